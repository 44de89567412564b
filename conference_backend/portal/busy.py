"""Overlap warnings that do not block: the invitees' free/busy, asked like a calendar app.

The portal POSTs a VFREEBUSY REQUEST to the user's outbox (RFC 6638 §5); the
server answers each internal attendee's busy periods. Only times are known
that way, so the warning says "occupé" rather than naming other people's
meetings.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any

from icalendar import Calendar, FreeBusy, vCalAddress

from conference_backend.portal import meetings
from conference_backend.portal.caldav_client import CALDAV, CalDav
from visio_core import ical, itip, recurrence
from visio_core.accounts import Account, Accounts

MAX_OCCURRENCES = 200  # a year of twice-weekly meetings; enough to warn about


@dataclass(frozen=True)
class Warning:
    who: str
    start: dt.datetime
    end: dt.datetime
    title: str = ""  # only with VISIO_SHOW_BUSY_TITLES
    organizer: str = ""


def occurrences(draft: meetings.Draft, me: Account) -> list[tuple[dt.datetime, dt.datetime]]:
    cal = meetings.new_event(draft, me, uid="check")
    horizon = draft.start + meetings.MAX_RANGE + dt.timedelta(days=1)
    found: list[tuple[dt.datetime, dt.datetime]] = []
    for ev in recurrence.between(cal, draft.start, horizon):
        found.append((ev["DTSTART"].dt, ev["DTEND"].dt))
        if len(found) >= MAX_OCCURRENCES:
            break
    return found


def _request(me: Account, people: list[Account], start: dt.datetime, end: dt.datetime) -> str:
    cal = Calendar()
    cal.add("PRODID", "-//Visio//Portal//FR")
    cal.add("VERSION", "2.0")
    cal.add("METHOD", "REQUEST")
    fb = FreeBusy()
    fb.add("UID", meetings.new_uid())
    fb.add("DTSTAMP", dt.datetime.now(dt.UTC))
    fb.add("DTSTART", start.astimezone(dt.UTC))
    fb.add("DTEND", end.astimezone(dt.UTC))
    fb.add("ORGANIZER", vCalAddress(f"mailto:{me.email}"))
    for person in people:
        fb.add("ATTENDEE", vCalAddress(f"mailto:{person.email}"))
    cal.add_component(fb)
    return ical.serialize(cal)


def _busy(answer: bytes) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    root = ET.fromstring(answer)  # noqa: S314 - our own server's schedule-response
    found: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for resp in root.iter(f"{{{CALDAV}}}response"):
        data = resp.findtext(f"{{{CALDAV}}}calendar-data")
        if not data:
            continue
        for fb in ical.parse(data).walk("VFREEBUSY"):
            address = itip.address_of(fb.get("ATTENDEE"))
            periods = fb.get("FREEBUSY", [])
            for prop in periods if isinstance(periods, list) else [periods]:
                for period in _periods(prop):
                    found.setdefault(address, []).append(period)
    return found


def _periods(prop: Any) -> list[tuple[dt.datetime, dt.datetime]]:
    values = prop.dt if hasattr(prop, "dt") else prop
    items = values if isinstance(values, list) else [values]
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for raw in items:
        item: Any = getattr(raw, "dt", raw)
        start, other = item
        out.append((start, other if isinstance(other, dt.datetime) else start + other))
    return out


async def warnings(
    caldav: CalDav,
    accounts: Accounts,
    me: Account,
    draft: meetings.Draft,
    ignore: list[tuple[dt.datetime, dt.datetime]] | None = None,
    titles: bool = False,
    uid: str = "",
) -> list[Warning]:
    """Each invitee with an account who is busy during one of the meeting's occurrences.

    `ignore`: periods of the meeting being edited itself (its own copies are busy
    too); with `titles`, the signed internal API names the other meetings and
    leaves out `uid` itself.
    """
    people = [a for a in accounts.by_addresses(draft.invitees).values() if a.login != me.login]
    if not people:
        return []
    slots = occurrences(draft, me)
    if not slots:
        return []
    if titles:
        return await _with_titles(caldav, people, slots, uid)
    answer = await caldav.freebusy(me.login, _request(me, people, slots[0][0], slots[-1][1]))
    busy = _busy(answer)
    found: list[Warning] = []
    for person in people:
        for b_start, b_end in busy.get(person.email.lower(), []):
            if any(s <= b_start and b_end <= e for s, e in ignore or []):
                continue
            for s, e in slots:
                if b_start < e and s < b_end:
                    found.append(
                        Warning(person.name or person.login, max(s, b_start), min(e, b_end))
                    )
    found.sort(key=lambda w: (w.start, w.who))
    return found


async def _with_titles(
    caldav: CalDav,
    people: list[Account],
    slots: list[tuple[dt.datetime, dt.datetime]],
    uid: str,
) -> list[Warning]:
    details = await caldav.busy_details(
        {
            "addresses": [p.email for p in people],
            "start": slots[0][0].astimezone(dt.UTC).isoformat(),
            "end": slots[-1][1].astimezone(dt.UTC).isoformat(),
            "exclude_uid": uid,
        }
    )
    names = {p.email.lower(): p.name or p.login for p in people}
    found: list[Warning] = []
    for b in details:
        b_start = dt.datetime.fromisoformat(b["start"])
        b_end = dt.datetime.fromisoformat(b["end"])
        for s, e in slots:
            if b_start < e and s < b_end:
                who = names.get(b["address"], b["address"])
                found.append(
                    Warning(who, max(s, b_start), min(e, b_end), b["title"] or "—", b["organizer"])
                )
    found.sort(key=lambda w: (w.start, w.who))
    return found
