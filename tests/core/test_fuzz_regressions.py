"""Pure forms of inputs bench/fuzz_caldav.py found to break the server.

The real-server forms are in tests/e2e/test_fuzz_regressions.py.
"""

from __future__ import annotations

import pytest

from visio_core import ical

DUPLICATED_TZID = "\r\n".join(
    [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Visio fuzz//EN",
        "BEGIN:VTIMEZONE",
        "TZID:Europe/Paris",
        "TZID:Europe/Paris",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0200",
        "TZOFFSETTO:+0100",
        "DTSTART:19701025T030000",
        "END:STANDARD",
        "END:VTIMEZONE",
        "BEGIN:VEVENT",
        "UID:fuzz-dup-tzid",
        "DTSTAMP:20261130T090000Z",
        "DTSTART;TZID=Europe/Paris:20261203T100000",
        "SUMMARY:Fuzz",
        "END:VEVENT",
        "END:VCALENDAR",
        "",
    ]
)


@pytest.mark.xfail(
    strict=True,
    raises=AttributeError,
    reason="issue 12 (owner of visio_core/ical.py, points 4/5): icalendar's own "
    "AttributeError escapes ical.parse, whose callers only expect ValueError (PUT answers 500)",
)
def test_a_calendar_icalendar_cannot_read_is_a_value_error() -> None:
    """Callers (the PUT path, the agenda, rebuild) treat ValueError as "unreadable"."""
    with pytest.raises(ValueError):
        ical.parse(DUPLICATED_TZID)
