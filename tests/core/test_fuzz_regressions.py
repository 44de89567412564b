"""Pure forms of inputs bench/fuzz_caldav.py found to break the server.

The real-server forms are in tests/e2e/test_fuzz_regressions.py.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import TypeVar

import pytest
from icalendar import Calendar

from visio_core import ical, itip

T = TypeVar("T")

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


def test_a_calendar_icalendar_cannot_read_is_a_value_error() -> None:
    """Callers (the PUT path, the agenda, rebuild) treat ValueError as "unreadable"."""
    with pytest.raises(ValueError):
        ical.parse(DUPLICATED_TZID)


def within(seconds: float, work: Callable[[], T]) -> T:
    """`work()`, failing when it runs far past `seconds` (a hang, not a slow machine)."""
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(work()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    assert result, "raised (see the thread's traceback above)"
    return result[0]


def series_with_exdates(count: int, partstat: str = "NEEDS-ACTION") -> Calendar:
    start = dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC)
    days = ",".join(
        (start + dt.timedelta(days=i)).strftime("%Y%m%dT%H%M%SZ") for i in range(1, count + 1)
    )
    return ical.parse(
        "\r\n".join(
            [
                "BEGIN:VCALENDAR",
                "VERSION:2.0",
                "PRODID:-//Visio fuzz//EN",
                "BEGIN:VEVENT",
                "UID:fuzz-exdates",
                "DTSTAMP:20261130T090000Z",
                "DTSTART:20260105T090000Z",
                "RRULE:FREQ=DAILY",
                f"EXDATE:{days}",
                "SUMMARY:Fuzz",
                "ORGANIZER:mailto:org@example.org",
                f"ATTENDEE;PARTSTAT={partstat}:mailto:guest@example.org",
                "END:VEVENT",
                "END:VCALENDAR",
                "",
            ]
        )
    )


def test_planning_a_series_with_thousands_of_exdates_is_not_quadratic() -> None:
    """An attendee's answer re-saves the organizer's copy; planning compared each of
    its 5,000 EXDATEs with all the old ones (25 M comparisons: 18 s under the write
    lock, and the fuzzer's replies went unanswered). 20,000 here: hours when quadratic."""
    old, new = series_with_exdates(20_000), series_with_exdates(20_000, "ACCEPTED")
    assert within(60, lambda: itip.plan(old, new, "org@example.org")) == []


def test_thousands_of_new_exdates_are_one_update_not_a_cancel_per_date() -> None:
    """One PUT that adds 5,000 EXDATEs queued 5,000 CANCELs for each attendee."""
    old, new = series_with_exdates(1), series_with_exdates(5_000)
    out = within(60, lambda: itip.plan(old, new, "org@example.org"))
    assert [(o.method, o.recurrence_id) for o in out] == [("REQUEST", None)]
    assert out[0].recipients == ("guest@example.org",)
