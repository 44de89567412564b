"""Which CATEGORIES words turn an event into a video or audio room.

Matching is case- and accent-insensitive and ignores spaces, hyphens and
underscores, so "Visio-conférence", "VISIOCONFERENCE" and "visio conference"
are the same word.
"""

from __future__ import annotations

import enum
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass


class RoomKind(enum.StrEnum):
    VIDEO = "video"
    AUDIO = "audio"


DEFAULT_VIDEO_WORDS: tuple[str, ...] = (
    "Visio",
    "Visioconférence",
    "Visio-conférence",
    "Vidéo",
    "Vidéoconférence",
    "Video",
    "Videoconference",
    "Video conference",
    "Video call",
    "Appel vidéo",
)
DEFAULT_AUDIO_WORDS: tuple[str, ...] = (
    "Audio",
    "Audioconférence",
    "Audio-conférence",
    "Audioconference",
    "Audio conference",
    "Conférence téléphonique",
    "Conference call",
)
DEFAULT_RECORD_WORDS: tuple[str, ...] = ("Enregistrement", "Recording", "Record")

# Longer category values are not words anybody typed; skipping them keeps a
# 10,000-character CATEGORIES value from costing anything.
_MAX_WORD_LENGTH = 64


def normalize(word: str) -> str:
    """Fold case and accents and drop separators: the key words are compared on."""
    decomposed = unicodedata.normalize("NFKD", word.strip().casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and c not in " -_.\t'’")


@dataclass(frozen=True)
class CategoryRules:
    video: frozenset[str]
    audio: frozenset[str]
    record: frozenset[str]

    @classmethod
    def from_words(
        cls,
        video: Iterable[str] = DEFAULT_VIDEO_WORDS,
        audio: Iterable[str] = DEFAULT_AUDIO_WORDS,
        record: Iterable[str] = DEFAULT_RECORD_WORDS,
    ) -> CategoryRules:
        return cls(
            video=frozenset(normalize(w) for w in video if w.strip()),
            audio=frozenset(normalize(w) for w in audio if w.strip()),
            record=frozenset(normalize(w) for w in record if w.strip()),
        )

    def _normalized(self, categories: Iterable[str]) -> set[str]:
        return {normalize(c) for c in categories if len(c) <= _MAX_WORD_LENGTH}

    def kind(self, categories: Iterable[str]) -> RoomKind | None:
        """The room kind the categories ask for; video wins when both are present."""
        words = self._normalized(categories)
        if words & self.video:
            return RoomKind.VIDEO
        if words & self.audio:
            return RoomKind.AUDIO
        return None

    def wants_recording(self, categories: Iterable[str]) -> bool:
        return bool(self._normalized(categories) & self.record)


DEFAULT_RULES = CategoryRules.from_words()


def parse_word_list(value: str) -> list[str]:
    """A configured word list: comma-separated, blanks ignored."""
    return [w.strip() for w in value.split(",") if w.strip()]
