"""The user's occurrences for the views: from the agenda index, or through CalDAV.

The storage plugin indexes every event as it is written (visio_core/agenda.py),
so a view is one query and always current. Series outside their indexed window,
and calendars not indexed yet, are read through CalDAV and expanded here.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from conference_backend.portal.caldav_client import CalDav, Resource
from visio_core import agenda, conference, ical, itip, recurrence
from visio_core.accounts import Account
from visio_core.agenda import Agenda


@dataclass(slots=True)  # hundreds per month view: slots make them quick to build
class Occurrence:
    href: str
    uid: str
    rid: str  # the occurrence's original start in UTC (RECURRENCE-ID), as text
    title: str
    start: dt.datetime  # in the user's zone
    end: dt.datetime
    kind: str  # visio | audio | ""
    recurring: bool
    mine: bool  # the user organizes it (invitations delivered to them are read-only)

    # Only for the entries a view shows (a month cell shows four).
    @property
    def link(self) -> str:
        return "/meeting?" + urlencode({"href": self.href, "rid": self.rid})

    @property
    def iso(self) -> str:
        return self.start.isoformat()

    @property
    def hhmm(self) -> str:
        return self.start.strftime("%H:%M")


def rid_text(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_rid(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _aware(value: Any, tz: ZoneInfo) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=tz) if value.tzinfo is None else value.astimezone(tz)
    return dt.datetime.combine(value, dt.time(), tz)  # all-day: from midnight


def is_mine(cal: Any, me: Account) -> bool:
    organizer = itip.organizer_address(cal)
    return not organizer or organizer.lower() == me.email.lower()


@dataclass(frozen=True)
class Parsed:
    """One resource, parsed once per ETag: series keep their calendar to expand later."""

    cal: Any
    recurring: bool
    mine: bool
    # A single meeting, read once: (start, end, title, kind, uid); None for series.
    single: tuple[dt.datetime, dt.datetime, str, str, str] | None = None


class Cache:
    """Events read through CalDAV, parsed once per ETag (icalendar is the costly part)."""

    MAX_PARSED = 20_000

    def __init__(self) -> None:
        self.parsed: OrderedDict[tuple[str, str], Parsed] = OrderedDict()

    def parse(self, res: Resource, me: Account) -> Parsed:
        key = (res.href, res.etag)
        found = self.parsed.get(key) if res.etag else None
        if found is not None:
            self.parsed.move_to_end(key)
            return found
        cal = ical.parse(res.text)
        master: Any = conference.master(cal)
        recurring = master is not None and ("RRULE" in master or "RDATE" in master)
        single = None if recurring else _single(master)
        # A single meeting needs nothing more than `single`: the tree is let go.
        found = Parsed(None if single else cal, recurring, is_mine(cal, me), single)
        if res.etag:
            self.parsed[key] = found
            if len(self.parsed) > self.MAX_PARSED:
                self.parsed.popitem(last=False)
        return found


def occurrences_of(
    parsed: Parsed, href: str, start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[Occurrence]:
    if parsed.single is not None:  # the common case, without the expander
        s, e, title, kind, uid = parsed.single
        if _overlaps(s, e, start, end):
            return [
                Occurrence(
                    href,
                    uid,
                    rid_text(s),
                    title,
                    s.astimezone(tz),
                    e.astimezone(tz),
                    kind,
                    False,
                    parsed.mine,
                )
            ]
        return []
    found: list[Occurrence] = []
    for ev in recurrence.between(parsed.cal, start, end):
        if str(ev.get("STATUS", "")).upper() == "CANCELLED":
            continue
        s = _aware(ev["DTSTART"].dt, tz)
        e = _aware(ev["DTEND"].dt, tz) if "DTEND" in ev else s
        rid = ev.get("RECURRENCE-ID")
        original = _aware(rid.dt, tz) if rid is not None else s
        found.append(
            Occurrence(
                href=href,
                uid=str(ev.get("UID", "")),
                rid=rid_text(original),
                title=str(ev.get("SUMMARY", "")) or "—",
                start=s,
                end=e,
                kind=agenda.kind_of(ev),
                recurring=parsed.recurring,
                mine=parsed.mine,
            )
        )
    return found


def expand(
    resources: list[Resource],
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    me: Account,
    cache: Cache | None = None,
) -> list[Occurrence]:
    cache = cache or Cache()
    found: list[Occurrence] = []
    for res in resources:
        try:
            found += occurrences_of(cache.parse(res, me), res.href, start, end, tz)
        except Exception:  # noqa: S112 - one unreadable event must not hide the rest
            continue
    found.sort(key=lambda o: (o.start, o.title))
    return found


def _overlaps(s: dt.datetime, e: dt.datetime, start: dt.datetime, end: dt.datetime) -> bool:
    return s < end and (e > start or (s == e and s >= start))


# An indexed occurrence placed in the viewer's zone: (start, title, end, row).
Candidate = tuple[dt.datetime, str, dt.datetime, agenda.Row]


def _candidates(
    rows: list[agenda.Row], start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[Candidate]:
    """The rows really in [start, end) once in the viewer's zone, in the views' order."""
    found: list[Candidate] = []
    for row in rows:
        s = agenda.decode(row[4], row[6], tz)
        e = agenda.decode(row[5], row[6], tz)
        if _overlaps(s, e, start, end):
            found.append((s, row[9] or "—", e, row))
    found.sort(key=lambda c: (c[0], c[1]))
    return found


def _indexed(
    c: Candidate, calendar: str, me: str, tz: ZoneInfo, hrefs: dict[str, str]
) -> Occurrence:
    s, title, e, (href, uid, organizer, recurring, _, _, _, rid, rid_timing, _, kind) = c
    original = (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(rid))
        if rid_timing == agenda.UTC
        else rid_text(agenda.decode(rid, rid_timing, tz))
    )
    return Occurrence(
        hrefs.get(href) or hrefs.setdefault(href, calendar + quote(href)),
        uid,
        original,
        title,
        s,
        e,
        kind,
        bool(recurring),
        not organizer or organizer == me,
    )


async def between(
    caldav: CalDav,
    index: Agenda,
    me: Account,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    cache: Cache,
) -> list[Occurrence]:
    found, _ = await _between(caldav, index, me, start, end, tz, cache, None)
    return found


async def by_day(
    caldav: CalDav,
    index: Agenda,
    me: Account,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    cache: Cache,
    per_day: int,
) -> tuple[dict[dt.date, list[Occurrence]], dict[dt.date, int]]:
    """The first `per_day` occurrences of each day, and how many more each day has.

    A month cell shows four: only those are built, not the hundreds behind "+N".
    """
    kept, more = await _between(caldav, index, me, start, end, tz, cache, per_day)
    days: dict[dt.date, list[Occurrence]] = {}
    for occ in kept:
        days.setdefault(occ.start.date(), []).append(occ)
    return days, more


async def _between(
    caldav: CalDav,
    index: Agenda,
    me: Account,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    cache: Cache,
    per_day: int | None,
) -> tuple[list[Occurrence], dict[dt.date, int]]:
    calendar = await caldav.calendar(me.login)
    indexed = index.between(unquote(calendar), start, end)
    if indexed is None:  # not indexed yet: ETags first, then only what is new to us
        listed = await caldav.query(me.login, start, end, data=False)
        unknown = [r.href for r in listed if (r.href, r.etag) not in cache.parsed]
        fetched = {r.href: r for r in await caldav.multiget(me.login, unknown)}
        found = expand([fetched.get(r.href, r) for r in listed], start, end, tz, me, cache)
        return _trim(found, per_day)
    rows, uncovered = indexed
    candidates = _candidates(rows, start, end, tz)
    more: dict[dt.date, int] = {}
    if per_day is not None and not uncovered:
        candidates, more = _trim(candidates, per_day, key=lambda c: c[0].date())
    address = me.email.lower()
    hrefs: dict[str, str] = {}  # a series' occurrences share their file
    found = [_indexed(c, calendar, address, tz, hrefs) for c in candidates]
    if uncovered:  # series viewed beyond their indexed window
        wanted = [calendar + quote(h) for h in uncovered]
        found += expand(await caldav.multiget(me.login, wanted), start, end, tz, me, cache)
        found.sort(key=lambda o: (o.start, o.title))
        return _trim(found, per_day)
    return found, more


def _trim(
    items: list[Any], per_day: int | None, key: Any = lambda o: o.start.date()
) -> tuple[list[Any], dict[dt.date, int]]:
    """The first `per_day` items of each day (items in order), and the count left out."""
    if per_day is None:
        return items, {}
    kept: list[Any] = []
    seen: dict[dt.date, int] = {}
    for item in items:
        day = key(item)
        seen[day] = seen.get(day, 0) + 1
        if seen[day] <= per_day:
            kept.append(item)
    return kept, {day: n - per_day for day, n in seen.items() if n > per_day}


def occurrence_of(cal: Any, rid: dt.datetime | None) -> Any:
    """The occurrence `rid` names (expanded, with overrides applied), or the master."""
    master = conference.master(cal)
    if rid is None or master is None:
        return master
    if "RRULE" not in master and "RDATE" not in master:
        return master
    for ev in conference.vevents(cal):  # an override may have moved anywhere
        original = ev.get("RECURRENCE-ID")
        if original is not None and _utc(original.dt) == rid:
            return ev
    try:
        window = recurrence.between(cal, rid - dt.timedelta(days=1), rid + dt.timedelta(days=2))
    except recurrence.TooCostly:
        return None
    for ev in window:
        original = ev.get("RECURRENCE-ID")
        moment = original.dt if original is not None else ev["DTSTART"].dt
        if isinstance(moment, dt.datetime) and moment.astimezone(dt.UTC) == rid:
            return ev
    return None


def _utc(value: object) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if isinstance(value, dt.datetime) else None


def _single(master: Any) -> tuple[dt.datetime, dt.datetime, str, str, str] | None:
    if master is None or str(master.get("STATUS", "")).upper() == "CANCELLED":
        return None
    value = master["DTSTART"].dt
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        return None  # all-day and floating times: left to the expander
    end_prop = master.get("DTEND")
    if end_prop is not None:
        end = end_prop.dt
    elif master.get("DURATION") is not None:
        end = value + master["DURATION"].dt
    else:
        end = value
    if not isinstance(end, dt.datetime) or end.tzinfo is None:
        return None
    title = str(master.get("SUMMARY", "")) or "—"
    return value, end, title, agenda.kind_of(master), str(master.get("UID", ""))
