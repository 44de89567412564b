"""The user's events, read through CalDAV and expanded into occurrences for the views."""

from __future__ import annotations

import datetime as dt
import time
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import unquote, urlencode
from zoneinfo import ZoneInfo

import recurring_ical_events

from conference_backend.portal.caldav_client import CalDav, Resource
from visio_core import conference, ical, itip
from visio_core.accounts import Account


@dataclass(frozen=True)
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

    # Computed once per occurrence: cached views are rendered again and again.
    @cached_property
    def link(self) -> str:
        return "/meeting?" + urlencode({"href": self.href, "rid": self.rid})

    @cached_property
    def iso(self) -> str:
        return self.start.isoformat()

    @cached_property
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
    """What the views read, kept briefly so browsing back and forth stays quick.

    Parsing is the costly part (icalendar), so each resource is parsed once per
    ETag. Expanded views are kept FRESH_SECONDS. The portal's own writes patch the
    cached views at once (it knows what it wrote: title, times, category are
    exactly what the views show), so a saved meeting is visible immediately;
    changes made elsewhere (a calendar app, an invitee's answer) show within
    FRESH_SECONDS. The meeting page always reads the event itself.
    """

    FRESH_SECONDS = 20.0
    MAX_PARSED = 20_000
    MAX_VIEWS = 512

    def __init__(self) -> None:
        self.parsed: OrderedDict[tuple[str, str], Parsed] = OrderedDict()
        self.views: OrderedDict[tuple[str, str, str, str], tuple[float, list[Occurrence]]] = (
            OrderedDict()
        )

    def parse(self, res: Resource, me: Account | None) -> Parsed:
        """`me` None: the portal's own write, so the user organizes it."""
        key = (res.href, res.etag)
        found = self.parsed.get(key) if res.etag else None
        if found is not None:
            self.parsed.move_to_end(key)
            return found
        cal = ical.parse(res.text)
        master: Any = conference.master(cal)
        recurring = master is not None and ("RRULE" in master or "RDATE" in master)
        single = None if recurring else _single(master)
        mine = me is None or is_mine(cal, me)
        # A single meeting needs nothing more than `single`: the tree is let go.
        found = Parsed(None if single else cal, recurring, mine, single)
        if res.etag:
            self.parsed[key] = found
            if len(self.parsed) > self.MAX_PARSED:
                self.parsed.popitem(last=False)
        return found

    def view(self, key: tuple[str, str, str, str]) -> list[Occurrence] | None:
        hit = self.views.get(key)
        if hit is None or time.monotonic() - hit[0] > self.FRESH_SECONDS:
            return None
        return hit[1]

    def keep(self, key: tuple[str, str, str, str], found: list[Occurrence]) -> None:
        self.views[key] = (time.monotonic(), found)
        if len(self.views) > self.MAX_VIEWS:
            self.views.popitem(last=False)

    def wrote(self, login: str, href: str, text: str | None) -> None:
        """The server accepted the portal's PUT (`text`) or DELETE (None) of `href`."""
        try:
            parsed = self.parse(Resource(href, "", text), None) if text is not None else None
        except Exception:  # unreadable: let the next view read the server
            self.forget(login)
            return
        same = unquote(href)  # the server may quote hrefs differently from the portal
        for key in [k for k in self.views if k[0] == login]:
            stamp, shown = self.views[key]
            kept = [o for o in shown if unquote(o.href) != same]
            if parsed is not None:
                start, end = dt.datetime.fromisoformat(key[1]), dt.datetime.fromisoformat(key[2])
                kept += occurrences_of(parsed, href, start, end, ZoneInfo(key[3]))
                kept.sort(key=lambda o: (o.start, o.title))
            self.views[key] = (stamp, kept)

    def forget(self, login: str) -> None:
        for key in [k for k in self.views if k[0] == login]:
            del self.views[key]


def occurrences_of(
    parsed: Parsed, href: str, start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[Occurrence]:
    if parsed.single is not None:  # the common case, without the expander
        s, e, title, kind, uid = parsed.single
        if s < end and (e > start or (s == e and s >= start)):
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
                kind=_kind(ev),
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


async def between(
    caldav: CalDav,
    me: Account,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    cache: Cache,
) -> list[Occurrence]:
    key = (me.login, start.isoformat(), end.isoformat(), str(tz))
    found = cache.view(key)
    if found is None:
        # ETags first; only events not parsed before travel with their data.
        listed = await caldav.query(me.login, start, end, data=False)
        unknown = [r.href for r in listed if (r.href, r.etag) not in cache.parsed]
        fetched = {r.href: r for r in await caldav.multiget(me.login, unknown)}
        resources = [fetched.get(r.href, r) for r in listed]
        found = expand(resources, start, end, tz, me, cache)
        cache.keep(key, found)
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


def _kind(ev: Any) -> str:
    cats = {c.lower() for c in conference.categories_of(ev)}
    return "audio" if "audio" in cats else "visio" if "visio" in cats else ""


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
    return value, end, title, _kind(master), str(master.get("UID", ""))
