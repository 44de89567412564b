"""The agenda index: what it keeps of an event, and the views' query over it."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from tests.support.ics import event
from visio_core import agenda, ical
from visio_core.agenda import Agenda
from visio_core.db import Database

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


def index(text: str, now: dt.datetime = NOW) -> agenda.Index:
    found = agenda.index_of(ical.parse(text), now)
    assert found is not None
    return found


def shown(entry: agenda.Entry, tz: ZoneInfo = PARIS) -> tuple[str, str]:
    start = agenda.decode(entry.start, entry.timing, tz)
    end = agenda.decode(entry.end, entry.timing, tz)
    return start.strftime("%Y-%m-%d %H:%M"), end.strftime("%H:%M")


def test_a_single_meeting_is_one_entry_in_utc_and_always_covered() -> None:
    found = index(event(uid="one", start="20261203T100000", end="20261203T113000"))
    assert (found.uid, found.recurring) == ("one", False)
    assert (found.covered_from, found.covered_to) == (agenda.ALWAYS_FROM, agenda.ALWAYS_TO)
    (entry,) = found.entries
    assert entry.timing == agenda.UTC
    assert agenda.decode(entry.start, entry.timing, ZoneInfo("UTC")).hour == 9
    assert (entry.title, entry.kind) == ("Comité technique", "visio")
    assert shown(entry) == ("2026-12-03 10:00", "11:30")
    assert shown(entry, ZoneInfo("America/New_York")) == ("2026-12-03 04:00", "05:30")


def test_all_day_and_floating_times_keep_the_viewers_clock() -> None:
    all_day = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:t\r\nBEGIN:VEVENT\r\nUID:d\r\n"
    all_day += "DTSTAMP:20261130T090000Z\r\nDTSTART;VALUE=DATE:20261224\r\nSUMMARY:Off\r\n"
    all_day += "END:VEVENT\r\nEND:VCALENDAR\r\n"
    (day,) = index(all_day).entries
    assert day.timing == agenda.DATE
    assert shown(day) == ("2026-12-24 00:00", "00:00")  # ends at the next midnight
    assert agenda.decode(day.end, day.timing, PARIS).day == 25
    floating = all_day.replace("DTSTART;VALUE=DATE:20261224", "DTSTART:20261224T090000")
    (at_nine,) = index(floating).entries
    assert at_nine.timing == agenda.FLOATING
    assert shown(at_nine, ZoneInfo("Asia/Tokyo")) == ("2026-12-24 09:00", "09:00")


def test_a_series_keeps_overrides_and_leaves_out_what_is_cancelled() -> None:
    text = event(
        uid="s",
        summary="Point hebdo",
        start="20261202T100000",
        end="20261202T110000",
        extra="RRULE:FREQ=WEEKLY;COUNT=4\nEXDATE;TZID=Europe/Paris:20261209T100000",
        overrides=(
            "BEGIN:VEVENT\nUID:s\nDTSTAMP:20261130T090000Z\n"
            "RECURRENCE-ID;TZID=Europe/Paris:20261216T100000\n"
            "DTSTART;TZID=Europe/Paris:20261217T150000\nDTEND;TZID=Europe/Paris:20261217T160000\n"
            "SUMMARY:Point déplacé\nCATEGORIES:Audio\nEND:VEVENT\n"
            "BEGIN:VEVENT\nUID:s\nDTSTAMP:20261130T090000Z\n"
            "RECURRENCE-ID;TZID=Europe/Paris:20261223T100000\n"
            "DTSTART;TZID=Europe/Paris:20261223T100000\nDTEND;TZID=Europe/Paris:20261223T110000\n"
            "SUMMARY:Point hebdo\nSTATUS:CANCELLED\nEND:VEVENT"
        ),
    )
    found = index(text)
    assert found.recurring
    got = [
        (shown(e)[0], e.title, e.kind, agenda.decode(e.rid, e.rid_timing, PARIS).isoformat())
        for e in found.entries
    ]
    assert got == [
        ("2026-12-02 10:00", "Point hebdo", "visio", "2026-12-02T10:00:00+01:00"),
        ("2026-12-17 15:00", "Point déplacé", "audio", "2026-12-16T10:00:00+01:00"),
    ]


def test_an_open_ended_series_is_indexed_over_a_window_then_stops() -> None:
    daily = index(
        event(uid="d", start="20250101T090000", end="20250101T093000", extra="RRULE:FREQ=DAILY")
    )
    first = agenda.decode(daily.entries[0].start, agenda.UTC, ZoneInfo("UTC"))
    last = agenda.decode(daily.entries[-1].start, agenda.UTC, ZoneInfo("UTC"))
    assert NOW - agenda.COVER_BEFORE <= first < NOW - agenda.COVER_BEFORE + dt.timedelta(days=1)
    assert NOW + agenda.COVER_AFTER - dt.timedelta(days=1) <= last < NOW + agenda.COVER_AFTER
    assert daily.covered_to == agenda.instant(NOW + agenda.COVER_AFTER)
    minutely = index(
        event(uid="m", start="20261130T090000", end="20261130T090100", extra="RRULE:FREQ=MINUTELY")
    )
    assert len(minutely.entries) == agenda.MAX_ENTRIES
    # What is past the cap is not claimed as covered: a view there expands the series.
    assert minutely.covered_to <= agenda.instant(dt.datetime(2026, 12, 4, tzinfo=dt.UTC))


def test_an_event_the_expander_cannot_read_is_left_to_the_views(book: Agenda) -> None:
    text = event(uid="odd", extra="RRULE:FREQ=WEEKLY").replace(
        "DTSTART;TZID=Europe/Paris:20261203T100000\r\n", ""
    )
    found = index(text)
    assert (found.uid, found.recurring, found.entries) == ("odd", True, ())
    with book.db.transaction() as conn:
        Agenda.indexed(conn, "alice/calendar")
        Agenda.put(conn, "alice/calendar", "odd.ics", found)
    assert book.between("alice/calendar", *window("2026-12-03")) == ([], ["odd.ics"])


@pytest.fixture
def book(any_database: Database) -> Agenda:
    return Agenda(any_database)


def window(day: str, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), PARIS)
    return start, start + dt.timedelta(days=days)


def titles(book: Agenda, path: str, day: str, days: int = 1) -> list[str]:
    found = book.between(path, *window(day, days))
    assert found is not None
    start, end = window(day, days)
    rows, _ = found
    kept = []
    for _, _, _, _, s_at, e_at, timing, _, _, title, _ in rows:
        # As the portal does: the query is a little wide, the viewer's zone decides.
        s = agenda.decode(s_at, timing, PARIS)
        e = agenda.decode(e_at, timing, PARIS)
        if s < end and (e > start or (s == e and s >= start)):
            kept.append(title)
    return sorted(kept)


def test_views_read_what_was_written_and_nothing_removed(book: Agenda) -> None:
    assert book.between("alice/calendar", *window("2026-12-03")) is None  # never indexed
    with book.db.transaction() as conn:
        Agenda.indexed(conn, "/alice/calendar/")
        Agenda.put(conn, "alice/calendar", "a.ics", index(event(summary="A")))
        Agenda.put(
            conn,
            "alice/calendar",
            "b.ics",
            index(event(summary="B", start="20261204T100000", end="20261204T110000")),
        )
        Agenda.put(conn, "bob/calendar", "c.ics", index(event(summary="Bob's")))
        Agenda.put(
            conn,
            "alice/calendar",
            "long.ics",
            index(event(summary="Long", start="20261101T080000", end="20261231T180000")),
        )
    assert titles(book, "alice/calendar", "2026-12-03") == ["A", "Long"]
    assert titles(book, "alice/calendar", "2026-12-01", 7) == ["A", "B", "Long"]
    with book.db.transaction() as conn:
        Agenda.put(conn, "alice/calendar", "a.ics", index(event(summary="A renamed")))
        Agenda.remove(conn, "alice/calendar", "b.ics")
    assert titles(book, "alice/calendar", "2026-12-01", 7) == ["A renamed", "Long"]
    with book.db.transaction() as conn:
        Agenda.forget_under(conn, "alice")
    assert book.between("alice/calendar", *window("2026-12-03")) is None
    with book.db.reading() as conn:
        assert conn.execute("SELECT count(*) FROM agenda").fetchone()[0] == 1  # Bob's


def test_a_series_viewed_beyond_its_window_is_named_for_expansion(book: Agenda) -> None:
    series = index(
        event(
            uid="w",
            summary="W",
            start="20261202T100000",
            end="20261202T110000",
            extra="RRULE:FREQ=WEEKLY",
        )
    )
    with book.db.transaction() as conn:
        Agenda.indexed(conn, "alice/calendar")
        Agenda.put(conn, "alice/calendar", "w.ics", series)
    assert titles(book, "alice/calendar", "2026-12-01", 7) == ["W"]
    found = book.between("alice/calendar", *window("2028-06-01", 7))
    assert found == ([], ["w.ics"])


def test_copies_of_a_series_that_differ_in_answers_are_expanded_once() -> None:
    memo = agenda.SeriesMemo()
    copies = [
        event(uid="s", extra=f"RRULE:FREQ=DAILY\nATTENDEE;PARTSTAT={answer}:mailto:b@example.org")
        for answer in ("NEEDS-ACTION", "ACCEPTED")
    ]
    first, second = (memo.index_of(ical.parse(t), t, NOW) for t in copies)
    assert first is second and first is not None and len(first.entries) > 300
    moved = copies[0].replace("RRULE:FREQ=DAILY", "RRULE:FREQ=WEEKLY")
    weekly = memo.index_of(ical.parse(moved), moved, NOW)
    assert weekly is not None and len(weekly.entries) < 80
    assert memo.index_of(ical.parse(copies[0]), copies[0], NOW + dt.timedelta(days=1)) is not first
