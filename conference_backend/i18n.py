"""Page text in French and English; the browser's Accept-Language or ?lang= chooses."""

from __future__ import annotations

from aiohttp import web

from visio_core.i18n import DEFAULT_LANGUAGE, LANGUAGES

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


# The conference room's own words, handed to the page's script as JSON.
ROOM: dict[str, dict[str, str]] = {
    "fr": {
        "your_name": "Votre nom",
        "join": "Rejoindre la réunion",
        "sign_in_title": "J'ai un compte",
        "login": "Identifiant",
        "password": "Mot de passe",
        "sign_in": "Se connecter et entrer",
        "guest_title": "Je suis invité·e",
        "waiting_title": "La réunion n'est pas encore ouverte",
        "opens_in": "La salle ouvre dans {countdown}. Cette page vous fera entrer toute seule.",
        "lobby": "Patientez : une personne déjà présente va vous faire entrer.",
        "knock": "{name} demande à entrer",
        "admit": "Faire entrer",
        "refuse": "Refuser",
        "closed_deleted": "Cette réunion a été supprimée : la salle est fermée.",
        "closed_changed": "Cette réunion a été modifiée : la page va se recharger.",
        "closed_cancelled": "Cette séance a été annulée : la salle est fermée.",
        "closed_ended": "Cette réunion est terminée.",
        "closed_refused": "Votre demande d'entrée a été refusée.",
        "closed_full": "La salle est complète : elle n'accepte plus personne pour l'instant.",
        "closed_left": "Vous avez quitté la réunion.",
        "err_bad-credentials": "Identifiant ou mot de passe incorrect.",
        "err_name-required": "Indiquez votre nom pour entrer.",
        "err_bad-message": "Une demande n'a pas pu être traitée.",
        "err_failed": "La connexion au serveur a échoué.",
        "no_devices": "Aucune caméra ni aucun micro n'est disponible : vous écoutez et "
        "regardez sans être vu·e ni entendu·e.",
        "denied": "Vous n'avez pas autorisé la caméra et le micro : vous écoutez sans être "
        "vu·e ni entendu·e. Autorisez-les dans votre navigateur puis rechargez la page "
        "pour parler.",
        "camera_denied": "Vous n'avez pas autorisé la caméra : vous participez avec le micro "
        "seulement. Autorisez-la dans votre navigateur puis rechargez la page pour être vu.",
        "no_camera": "Pas de caméra disponible : vous participez avec le micro seulement.",
        "no_microphone": "Pas de micro disponible : vous participez avec la caméra seulement.",
        "mute": "Couper le micro",
        "unmute": "Activer le micro",
        "camera_off": "Couper la caméra",
        "camera_on": "Activer la caméra",
        "share": "Partager l'écran",
        "unshare": "Arrêter le partage",
        "leave": "Quitter",
        "microphone": "Micro",
        "camera": "Caméra",
        "reconnecting": "Connexion perdue : reconnexion en cours…",
        "chat": "Discussion",
        "send": "Envoyer",
        "message": "Votre message",
        "participants": "Participants",
        "you": "vous",
        "alone": "Vous êtes seul·e pour l'instant.",
        "enable_sound": "Activer le son",
        "muted": "micro coupé",
        "speaking": "parle",
        "consent_title": "Avant d'entrer",
        "consent_recorded": "L'organisateur enregistre cette réunion : votre image, votre voix "
        "et votre nom figureront dans l'enregistrement. En entrant, vous l'acceptez.",
        "consent_streamed": "Cette réunion est diffusée en direct sur Internet : votre image, "
        "votre voix et votre nom seront visibles du public. En entrant, vous l'acceptez.",
        "consent_both": "L'organisateur enregistre cette réunion et la diffuse en direct sur "
        "Internet : votre image, votre voix et votre nom y figureront. En entrant, vous "
        "l'acceptez.",
        "accept_recording": "J'ai compris, entrer",
        "indicator_recorded": "Enregistrement en cours",
        "indicator_streamed": "Diffusion en direct",
        "indicator_both": "Enregistrement et diffusion en direct",
        "start_recording": "Démarrer l'enregistrement",
        "stop_recording": "Arrêter l'enregistrement",
        "recording_refused": "Seul l'organisateur, connecté avec son compte, peut démarrer "
        "ou arrêter l'enregistrement.",
        "remove": "Retirer",
        "remove_label": "Retirer {name} de la réunion",
        "closed_removed": "Vous avez été retiré de la réunion.",
        "closed_lobby-full": "Trop de personnes attendent déjà d'entrer : réessayez dans "
        "quelques minutes.",
        "err_cool-down": "Votre demande d'entrée vient d'être refusée : vous pourrez la "
        "renouveler dans {seconds} s.",
        "err_rate-limited": "Vous envoyez trop de messages à la fois : patientez un instant.",
        "err_busy": "Trop de connexions en ce moment : réessayez dans {seconds} s.",
        "err_unavailable": "La vérification du mot de passe est impossible pour le moment : "
        "réessayez dans quelques minutes.",
        "err_chat-too-long": "Message trop long : {max} caractères au plus.",
        "err_not-allowed": "Vous ne pouvez pas retirer ce participant : seuls l'organisateur "
        "et les invités le peuvent, et personne ne retire l'organisateur.",
    },
    "en": {
        "your_name": "Your name",
        "join": "Join the meeting",
        "sign_in_title": "I have an account",
        "login": "Login",
        "password": "Password",
        "sign_in": "Sign in and join",
        "guest_title": "I am a guest",
        "waiting_title": "The meeting is not open yet",
        "opens_in": "The room opens in {countdown}. This page will let you in by itself.",
        "lobby": "Please wait: someone already in the meeting will let you in.",
        "knock": "{name} asks to join",
        "admit": "Let in",
        "refuse": "Refuse",
        "closed_deleted": "This meeting was deleted: the room is closed.",
        "closed_changed": "This meeting was changed: the page will reload.",
        "closed_cancelled": "This session was cancelled: the room is closed.",
        "closed_ended": "This meeting is over.",
        "closed_refused": "Your request to join was refused.",
        "closed_full": "The room is full: it takes nobody else for now.",
        "closed_left": "You left the meeting.",
        "err_bad-credentials": "Wrong login or password.",
        "err_name-required": "Please give your name to join.",
        "err_bad-message": "A request could not be handled.",
        "err_failed": "Connecting to the server failed.",
        "no_devices": "No camera or microphone is available: you can watch and listen, "
        "but nobody sees or hears you.",
        "denied": "You did not allow the camera and microphone: you can watch and listen, "
        "but nobody sees or hears you. Allow them in your browser, then reload the page "
        "to speak.",
        "camera_denied": "You did not allow the camera: you take part with your microphone "
        "only. Allow it in your browser, then reload the page to be seen.",
        "no_camera": "No camera available: you take part with your microphone only.",
        "no_microphone": "No microphone available: you take part with your camera only.",
        "mute": "Mute",
        "unmute": "Unmute",
        "camera_off": "Stop camera",
        "camera_on": "Start camera",
        "share": "Share screen",
        "unshare": "Stop sharing",
        "leave": "Leave",
        "microphone": "Microphone",
        "camera": "Camera",
        "reconnecting": "Connection lost: reconnecting…",
        "chat": "Chat",
        "send": "Send",
        "message": "Your message",
        "participants": "Participants",
        "you": "you",
        "alone": "You are alone for now.",
        "enable_sound": "Turn sound on",
        "muted": "muted",
        "speaking": "speaking",
        "consent_title": "Before you join",
        "consent_recorded": "The organizer records this meeting: your picture, your voice and "
        "your name will be in the recording. By joining, you agree to it.",
        "consent_streamed": "This meeting is streamed live on the Internet: your picture, your "
        "voice and your name will be seen by the public. By joining, you agree to it.",
        "consent_both": "The organizer records this meeting and streams it live on the "
        "Internet: your picture, your voice and your name will be in it. By joining, you "
        "agree to it.",
        "accept_recording": "I understand, join",
        "indicator_recorded": "Recording",
        "indicator_streamed": "Live streaming",
        "indicator_both": "Recording and live streaming",
        "start_recording": "Start recording",
        "stop_recording": "Stop recording",
        "recording_refused": "Only the organizer, signed in with their account, can start or "
        "stop the recording.",
        "remove": "Remove",
        "remove_label": "Remove {name} from the meeting",
        "closed_removed": "You were removed from the meeting.",
        "closed_lobby-full": "Too many people are already waiting to join: try again in a few "
        "minutes.",
        "err_cool-down": "Your request to join was just declined: you can ask again in "
        "{seconds} s.",
        "err_rate-limited": "You are sending too many messages at once: wait a moment.",
        "err_busy": "Too many sign-ins right now: try again in {seconds} s.",
        "err_unavailable": "Passwords cannot be checked right now: try again in a few minutes.",
        "err_chat-too-long": "Message too long: {max} characters at most.",
        "err_not-allowed": "You cannot remove this participant: only the organizer and the "
        "invitees can, and nobody removes the organizer.",
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
