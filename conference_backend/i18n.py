"""Page text in French and English; the browser's Accept-Language or ?lang= chooses."""

from __future__ import annotations

from aiohttp import web

from conference_backend.room_words import ROOM
from visio_core.i18n import DEFAULT_LANGUAGE, LANGUAGES

__all__ = ["PAGES", "ROOM", "request_language"]

PAGES: dict[str, dict[str, str]] = {
    "fr": {
        "product": "Visio",
        "not_found_title": "Lien introuvable",
        "not_found_body": "Ce lien de réunion n'existe pas ou n'est plus valable. "
        "Vérifiez l'invitation la plus récente ou demandez un nouveau lien à l'organisateur.",
        "next_occurrence": "Prochaine séance :",
        "no_occurrence": "Cette réunion n'a plus de séance à venir.",
        "room_opens": "La salle ouvre {minutes} minutes avant le début.",
        "kind_video": "Visioconférence",
        "kind_audio": "Audioconférence",
        "phone": "Par téléphone : appelez le {number}, puis tapez {room} suivi de #",
        "home_title": "Réunions en visioconférence",
        "home_body": "Planifiez une réunion dans votre agenda avec la catégorie « Visio » "
        "ou « Audio » : le lien de connexion s'y ajoute tout seul.",
        "caldav_address": "Adresse CalDAV à configurer dans votre agenda",
        "switch_language": "English",
    },
    "en": {
        "product": "Visio",
        "not_found_title": "Link not found",
        "not_found_body": "This meeting link does not exist or is no longer valid. "
        "Check the latest invitation or ask the organizer for a new link.",
        "next_occurrence": "Next session:",
        "no_occurrence": "This meeting has no upcoming session.",
        "room_opens": "The room opens {minutes} minutes before the start.",
        "kind_video": "Video meeting",
        "kind_audio": "Audio meeting",
        "phone": "By phone: call {number}, then key in {room} followed by #",
        "home_title": "Video meetings",
        "home_body": "Book a meeting in your calendar with the category “Visio” or "
        "“Audio”: the join link is added to it automatically.",
        "caldav_address": "CalDAV address to set up in your calendar app",
        "switch_language": "Français",
    },
}


def request_language(request: web.Request) -> str:
    chosen = request.query.get("lang", "")[:2].lower()
    if chosen in LANGUAGES:
        return chosen
    for part in request.headers.get("Accept-Language", "").split(","):
        code = part.split(";", 1)[0].strip()[:2].lower()
        if code in LANGUAGES:
            return code
    return DEFAULT_LANGUAGE
