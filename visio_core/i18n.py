"""Text that the server writes into events, pages and mail, in French and English."""

from __future__ import annotations

from typing import Final

LANGUAGES: Final = ("fr", "en")
DEFAULT_LANGUAGE: Final = "fr"

_CATALOGUE: Final[dict[str, dict[str, str]]] = {
    "join_label": {"fr": "Rejoindre la réunion", "en": "Join the meeting"},
    "phone_label": {"fr": "Rejoindre par téléphone", "en": "Join by phone"},
    "block_title_video": {"fr": "Visioconférence", "en": "Video meeting"},
    "block_title_audio": {"fr": "Audioconférence", "en": "Audio meeting"},
    "block_join": {"fr": "Rejoindre la réunion : {url}", "en": "Join the meeting: {url}"},
    "block_phone": {
        "fr": "Par téléphone : appelez le {number}, puis tapez le numéro de salle "
        "{room} suivi de #",
        "en": "By phone: call {number}, then key in the room number {room} followed by #",
    },
    "block_phone_oneclick": {
        "fr": "Accès direct depuis un mobile : {tel}",
        "en": "One tap from a mobile: {tel}",
    },
}


def language(value: str | None) -> str:
    """A supported language code; anything else falls back to French."""
    code = (value or "").strip().lower()[:2]
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


def text(key: str, lang: str, **values: str) -> str:
    entry = _CATALOGUE[key]
    template = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return template.format(**values) if values else template
