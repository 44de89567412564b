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

import recurring_ical_events

from conference_backend.portal.caldav_client import CalDav, Resource
from visio_core import agenda, conference, ical, itip
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
    for ev in recurring_ical_events.of(parsed.cal).between(start, end):
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


def _indexed(
    row: agenda.Row, calendar: str, me: str, tz: ZoneInfo, hrefs: dict[str, str]
) -> Occurrence:
    href, uid, organizer, recurring, start, end, timing, rid, rid_timing, title, kind = row
    original = (
        time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(rid))
        if rid_timing == agenda.UTC
        else rid_text(agenda.decode(rid, rid_timing, tz))
    )
    return Occurrence(
        hrefs.get(href) or hrefs.setdefault(href, calendar + quote(href)),
        uid,
        original,
        title or "—",
        agenda.decode(start, timing, tz),
        agenda.decode(end, timing, tz),
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
    calendar = await caldav.calendar(me.login)
    indexed = index.between(unquote(calendar), start, end)
    if indexed is None:  # not indexed yet: ETags first, then only what is new to us
        listed = await caldav.query(me.login, start, end, data=False)
        unknown = [r.href for r in listed if (r.href, r.etag) not in cache.parsed]
        fetched = {r.href: r for r in await caldav.multiget(me.login, unknown)}
        return expand([fetched.get(r.href, r) for r in listed], start, end, tz, me, cache)
    rows, uncovered = indexed
    address = me.email.lower()
    hrefs: dict[str, str] = {}  # a series' occurrences share their file
    found = [_indexed(r, calendar, address, tz, hrefs) for r in rows]
    found = [o for o in found if _overlaps(o.start, o.end, start, end)]
    if uncovered:  # series viewed beyond their indexed window
        wanted = [calendar + quote(h) for h in uncovered]
        found += expand(await caldav.multiget(me.login, wanted), start, end, tz, me, cache)
    found.sort(key=lambda o: (o.start, o.title))
    return found


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
    window = recurring_ical_events.of(cal).between(
        rid - dt.timedelta(days=1), rid + dt.timedelta(days=2)
    )
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
