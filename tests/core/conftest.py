"""Shared builders for the core tests: iCalendar text as clients send it (CRLF)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest
from icalendar.parser import Contentline

from visio_core.categories import RoomKind
from visio_core.conference import ConferenceSpec

JOIN_PREFIX = "https://visio.example.org/j/"
JOIN_URL = JOIN_PREFIX + "tok3n-ABC_def"
ROOM_ID = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"
ROOM_NUMBER = "123456789"

PARIS = (
    "BEGIN:VTIMEZONE\r\n"
    "TZID:Europe/Paris\r\n"
    "BEGIN:STANDARD\r\n"
    "DTSTART:19701025T030000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\n"
    "TZOFFSETFROM:+0200\r\n"
    "TZOFFSETTO:+0100\r\n"
    "END:STANDARD\r\n"
    "BEGIN:DAYLIGHT\r\n"
    "DTSTART:19700329T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\n"
    "TZOFFSETFROM:+0100\r\n"
    "TZOFFSETTO:+0200\r\n"
    "END:DAYLIGHT\r\n"
    "END:VTIMEZONE\r\n"
)


def build_vevent(
    uid: str = "meeting-1@example.org",
    start: str = ";TZID=Europe/Paris:20250310T100000",
    end: str | None = ";TZID=Europe/Paris:20250310T110000",
    summary: str = "Point équipe",
    categories: str | None = "Visio",
    extra: Iterable[str] = (),
) -> str:
    lines = ["BEGIN:VEVENT", f"UID:{uid}", "DTSTAMP:20250101T090000Z", f"DTSTART{start}"]
    if end is not None:
        lines.append(f"DTEND{end}")
    lines.append(f"SUMMARY:{summary}")
    if categories is not None:
        lines.append(f"CATEGORIES:{categories}")
    lines.extend(extra)
    lines.append("END:VEVENT")
    return "\r\n".join(lines) + "\r\n"


def build_vcalendar(
    *events: str, timezones: Iterable[str] = (PARIS,), method: str | None = None
) -> str:
    head = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Client 1.0//EN\r\n"
    if method:
        head += f"METHOD:{method}\r\n"
    return head + "".join(timezones) + "".join(events) + "END:VCALENDAR\r\n"


def _raw_value(line: str) -> str:
    """The value exactly as written (still escaped): after the first unquoted colon."""
    quoted = False
    for i, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char == ":" and not quoted:
            return line[i + 1 :]
    raise ValueError(f"no value in {line!r}")


def content_lines(text: str, name: str) -> list[tuple[dict[str, object], str]]:
    """Unfolded (params, raw escaped value) of every `name` line in serialized text."""
    unfolded = text.replace("\r\n ", "").replace("\r\n\t", "")
    found = []
    for line in unfolded.split("\r\n"):
        if line.upper().startswith((name + ";", name + ":")):
            _, params, _ = Contentline(line).parts()
            found.append((dict(params), _raw_value(line)))
    return found


@pytest.fixture
def paris_timezone() -> str:
    return PARIS


@pytest.fixture
def vevent() -> Callable[..., str]:
    return build_vevent


@pytest.fixture
def vcalendar() -> Callable[..., str]:
    return build_vcalendar


@pytest.fixture
def lines_of() -> Callable[[str, str], list[tuple[dict[str, object], str]]]:
    return content_lines


@pytest.fixture
def make_spec() -> Callable[..., ConferenceSpec]:
    def make(**changes: object) -> ConferenceSpec:
        values: dict[str, object] = {
            "room_id": ROOM_ID,
            "room_number": ROOM_NUMBER,
            "kind": RoomKind.VIDEO,
            "join_url": JOIN_URL,
            "join_prefix": JOIN_PREFIX,
            "language": "fr",
            "dialin_number": None,
        }
        values.update(changes)
        return ConferenceSpec(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def database(any_database):
    """Store tests run on SQLite and on PostgreSQL (tests/conftest.py)."""
    return any_database
