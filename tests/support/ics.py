"""Small builders of iCalendar text for tests (CRLF, as clients send it)."""

from __future__ import annotations

import uuid

import icalendar


def event(
    uid: str | None = None,
    summary: str = "Comité technique",
    start: str = "20261203T100000",
    end: str = "20261203T113000",
    categories: str | None = "Visio",
    extra: str = "",
    tz: str = "Europe/Paris",
    overrides: str = "",
) -> str:
    uid = uid or str(uuid.uuid4())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Visio tests//EN",
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20261130T090000Z",
        f"DTSTART;TZID={tz}:{start}",
        f"DTEND;TZID={tz}:{end}",
        f"SUMMARY:{summary}",
    ]
    if categories is not None:
        lines.append(f"CATEGORIES:{categories}")
    if extra:
        lines.extend(extra.strip("\n").split("\n"))
    lines.append("END:VEVENT")
    if overrides:
        lines.extend(overrides.strip("\n").split("\n"))
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def vevents(text: str) -> list[icalendar.Event]:
    return list(icalendar.Calendar.from_ical(text).walk("VEVENT"))


def conferences(ev: icalendar.Event) -> list[icalendar.prop.vUri]:
    value = ev.get("CONFERENCE")
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def join_link(text: str) -> str:
    """The video/audio CONFERENCE link of the first VEVENT."""
    for c in conferences(vevents(text)[0]):
        if str(c).startswith("http"):
            return str(c)
    raise AssertionError("no join link in event:\n" + text)
