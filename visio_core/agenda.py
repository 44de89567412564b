"""The agenda: every calendar's occurrences, indexed when an event is written.

Reading a month of a busy calendar through CalDAV means a time-range REPORT
that Radicale answers by expanding every event: hundreds of milliseconds for
500 events. The storage plugin already sees every write, so it also records
here, in the same SQLite transaction as the event, each occurrence's times,
title and kind; the portal's views are then one indexed query, always current.

Series are expanded over a window around the time of writing (COVER_BEFORE ..
COVER_AFTER) and say so (`covered_from`/`covered_to`): a view outside that
window expands those few series itself from the calendar. Times keep their
nature (`timing`): UTC instants, floating times and all-day dates, the last
two placed in the viewer's zone when read, as calendar apps do.

`index_of` is pure; `Agenda` reads and writes the tables.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar

from visio_core import conference, ical, itip, recurrence
from visio_core.db import Conn, Database

log = logging.getLogger("visio.agenda")
UTC, FLOATING, DATE = 0, 1, 2
COVER_BEFORE = dt.timedelta(days=92)
COVER_AFTER = dt.timedelta(days=400)
MAX_ENTRIES = 5_000  # per event: a minutely series stops here and is expanded when viewed
LONG = 86_400  # seconds: longer occurrences are found by their own index
SLACK = 14 * 3600  # floating times and dates: every zone is within 14 h of UTC
ALWAYS_FROM, ALWAYS_TO = -(2**62), 2**62
_EPOCH = dt.datetime(1970, 1, 1)


@dataclass(frozen=True)
class Entry:
    start: int  # epoch seconds (see `encode`)
    end: int
    timing: int
    rid: int  # the occurrence's original start (RECURRENCE-ID), same encoding
    rid_timing: int
    title: str
    kind: str  # visio | audio | ""

    @property
    def shown(self) -> tuple[str, str]:
        return self.title, self.kind

    @property
    def long(self) -> bool:
        return self.end - self.start > LONG


@dataclass(frozen=True)
class Index:
    uid: str
    organizer: str  # lower-case address, "" when the event names none
    recurring: bool
    covered_from: int
    covered_to: int
    entries: tuple[Entry, ...]


def kind_of(ev: Any) -> str:
    cats = {c.lower() for c in conference.categories_of(ev)}
    return "audio" if "audio" in cats else "visio" if "visio" in cats else ""


def _seconds(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // dt.timedelta(seconds=1)


def encode(value: dt.date | dt.datetime) -> tuple[int, int]:
    """(epoch seconds, timing): floating times and dates are counted as if in UTC."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return _seconds(value), FLOATING
        return _seconds(value.astimezone(dt.UTC).replace(tzinfo=None)), UTC
    return _seconds(dt.datetime.combine(value, dt.time())), DATE


def decode(seconds: int, timing: int, tz: ZoneInfo) -> dt.datetime:
    if timing == UTC:
        return dt.datetime.fromtimestamp(seconds, tz)
    # Floating and all-day: the viewer's own clock, as calendar apps show them.
    return (_EPOCH + dt.timedelta(seconds=seconds)).replace(tzinfo=tz)


def instant(moment: dt.datetime) -> int:
    return int(moment.timestamp())


def _end(ev: Any, start: dt.date | dt.datetime) -> dt.date | dt.datetime:
    if ev.get("DTEND") is not None:
        value: dt.date | dt.datetime = ev["DTEND"].dt
        return value
    if ev.get("DURATION") is not None:
        value = start + ev["DURATION"].dt
        return value
    # RFC 5545 3.6.1: a date lasts the day, a date-time an instant.
    return start if isinstance(start, dt.datetime) else start + dt.timedelta(days=1)


def _entry(ev: Any) -> Entry | None:
    if str(ev.get("STATUS", "")).upper() == "CANCELLED" or ev.get("DTSTART") is None:
        return None
    start_value = ev["DTSTART"].dt
    end_value = _end(ev, start_value)
    start, timing = encode(start_value)
    end, _ = encode(end_value)
    rid_prop = ev.get("RECURRENCE-ID")
    rid, rid_timing = encode(rid_prop.dt) if rid_prop is not None else (start, timing)
    return Entry(start, end, timing, rid, rid_timing, str(ev.get("SUMMARY", "")), kind_of(ev))


class SeriesMemo:
    """The index of a series, kept for the copies of the same event.

    Expanding an open-ended daily series takes tens of milliseconds, and an
    organizer's PUT delivers a copy to each attendee with an account, under
    Radicale's lock: those copies differ only in ATTENDEE lines (PARTSTAT), which
    the index does not read, so the expansion is done once per event and day.
    """

    SIZE = 32

    def __init__(self) -> None:
        self._found: OrderedDict[tuple[str, dt.date], Index | None] = OrderedDict()
        self._lock = threading.Lock()

    def index_of(self, cal: Calendar, text: str, now: dt.datetime) -> Index | None:
        if "RRULE" not in text and "RDATE" not in text:
            return index_of(cal, now)  # a single meeting: quicker than a digest
        kept = [line for line in ical.unfold(text).splitlines() if not line.startswith("ATTENDEE")]
        key = (hashlib.sha256("\n".join(kept).encode()).hexdigest(), now.date())
        with self._lock:
            if key in self._found:
                self._found.move_to_end(key)
                return self._found[key]
        found = index_of(cal, now)
        with self._lock:
            self._found[key] = found
            if len(self._found) > self.SIZE:
                self._found.popitem(last=False)
        return found


def index_of(cal: Calendar, now: dt.datetime) -> Index | None:
    """What the agenda keeps of one stored calendar object (None: no event in it).

    An event the expander cannot read never stops the write that stores it: it is
    indexed as a series covering nothing, so views expand it themselves (and skip
    it there if it is really unreadable), exactly as before the agenda existed.
    """
    try:
        return _index_of(cal, now)
    except recurrence.TooCostly as e:
        log.warning("event %s: left for the views to expand (%s)", ical.uid_of(cal), e)
        return Index(ical.uid_of(cal), "", True, ALWAYS_TO, ALWAYS_FROM, ())
    except Exception:  # recurring_ical_events and icalendar raise many kinds
        log.warning("event %s: left for the views to expand", ical.uid_of(cal), exc_info=True)
        return Index(ical.uid_of(cal), "", True, ALWAYS_TO, ALWAYS_FROM, ())


def _index_of(cal: Calendar, now: dt.datetime) -> Index | None:
    events = conference.vevents(cal)
    if not events:
        return None
    master = conference.master(cal)
    uid = str(events[0].get("UID", ""))
    organizer = itip.organizer_address(cal) or ""
    recurring = master is None or any(p in master for p in ("RRULE", "RDATE", "RECURRENCE-ID"))
    if not recurring:
        one = _entry(master) if master is not None else None
        return Index(uid, organizer.lower(), False, ALWAYS_FROM, ALWAYS_TO, (one,) if one else ())
    start, stop = now - COVER_BEFORE, now + COVER_AFTER
    covered_to = instant(stop)
    entries: list[Entry] = []
    found = recurrence.after(cal, start, stop - start)
    for ev in itertools.islice(found, MAX_ENTRIES + 1):
        entry = _entry(ev)
        moment = ev["DTSTART"].dt
        if not isinstance(moment, dt.datetime):
            moment = dt.datetime.combine(moment, dt.time())
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=dt.UTC)
        if moment >= stop:
            break
        if len(entries) == MAX_ENTRIES:  # what is past here is expanded when viewed
            covered_to = instant(moment)
            break
        if entry is not None:
            entries.append(entry)
    return Index(
        uid,
        organizer.lower(),
        True,
        instant(start),
        covered_to,
        tuple(entries),
    )


# What a view reads of one occurrence: (href, uid, organizer, recurring, start, end,
# timing, rid, rid_timing, title, kind). Plain tuples: a month holds hundreds.
Row = tuple[str, str, str, int, int, int, int, int, int, str, str]
# "end" quoted: a reserved word in PostgreSQL.
_SHOWN = 'href, uid, organizer, recurring, start, "end", timing, rid, rid_timing, title, kind'


def _path(calendar_path: str) -> str:
    return calendar_path.strip("/")


class Agenda:
    def __init__(self, db: Database) -> None:
        self.db = db

    # writes (inside a transaction the caller holds) ------------------------
    @staticmethod
    def put(conn: Conn, calendar_path: str, href: str, index: Index | None) -> None:
        path = _path(calendar_path)
        Agenda.remove(conn, path, href)
        if index is None:
            return
        conn.execute(
            "INSERT INTO agenda_items VALUES (?,?,?,?,?)",
            (path, href, int(index.recurring), index.covered_from, index.covered_to),
        )
        head = (path, href, index.uid, index.organizer, int(index.recurring))
        conn.executemany(
            "INSERT INTO agenda VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                (*head, e.start, e.end, e.timing, e.rid, e.rid_timing, int(e.long), *e.shown)
                for e in index.entries
            ],
        )

    @staticmethod
    def remove(conn: Conn, calendar_path: str, href: str) -> None:
        path = _path(calendar_path)
        conn.execute("DELETE FROM agenda WHERE calendar_path = ? AND href = ?", (path, href))
        conn.execute("DELETE FROM agenda_items WHERE calendar_path = ? AND href = ?", (path, href))

    @staticmethod
    def indexed(conn: Conn, calendar_path: str) -> None:
        """Every event of this calendar is in the agenda from now on."""
        conn.execute(
            "INSERT INTO agenda_calendars (calendar_path) VALUES (?) ON CONFLICT DO NOTHING",
            (_path(calendar_path),),
        )

    @staticmethod
    def forget_under(conn: Conn, calendar_path: str) -> None:
        """A collection (or a whole home) is deleted or replaced."""
        prefix = _path(calendar_path)
        for table in ("agenda", "agenda_items", "agenda_calendars"):
            # substr, not LIKE: paths are case-sensitive. The table name is a constant.
            conn.execute(
                f"DELETE FROM {table} WHERE calendar_path = ? "  # noqa: S608
                "OR substr(calendar_path, 1, ?) = ?",
                (prefix, len(prefix) + 1, prefix + "/"),
            )

    @staticmethod
    def is_indexed(conn: Conn, calendar_path: str) -> bool:
        row = conn.execute(
            "SELECT 1 FROM agenda_calendars WHERE calendar_path = ?", (_path(calendar_path),)
        ).fetchone()
        return row is not None

    # reads -----------------------------------------------------------------
    def between(
        self, calendar_path: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[list[Row], list[str]] | None:
        """Candidate occurrences in [start, end), and the series to expand by hand.

        None: this calendar is not indexed (written before the agenda existed and
        not yet backfilled); the caller reads it through CalDAV. Candidates are a
        little wider than asked (floating times): the caller places them in its zone.
        """
        path = _path(calendar_path)
        lo, hi = instant(start) - SLACK, instant(end) + SLACK
        with self.db.reading() as conn:
            if not self.is_indexed(conn, path):
                return None
            rows: list[Row] = conn.tuples(
                f"SELECT {_SHOWN} FROM agenda WHERE calendar_path = ? AND start >= ?"  # noqa: S608
                f" AND start < ? AND long = 0 UNION ALL SELECT {_SHOWN} FROM agenda"
                ' WHERE calendar_path = ? AND long = 1 AND start < ? AND "end" > ?',
                (path, lo - LONG, hi, path, hi, lo),
            )
            uncovered = conn.tuples(
                "SELECT href FROM agenda_items WHERE calendar_path = ? AND recurring = 1"
                " AND (covered_from > ? OR covered_to < ?)",
                (path, lo, hi),
            )
        skip = {h for (h,) in uncovered}
        if skip:
            rows = [r for r in rows if r[0] not in skip]
        return rows, sorted(skip)
