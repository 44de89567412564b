"""The CalDAV scheduling surface Radicale lacks (RFC 6638 subset).

- principals answer `calendar-user-address-set` with the account's mailto:
  addresses, and `schedule-inbox-URL` / `schedule-outbox-URL`;
- a VFREEBUSY request POSTed to the outbox answers each internal attendee's
  busy periods (Thunderbird and Apple Calendar show them in their invite dialogs).

Radicale builds the PROPFIND answer; we complete it rather than fork its code.
"""

from __future__ import annotations

import datetime as dt
import logging
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from typing import Any

from icalendar import Calendar, FreeBusy
from icalendar.prop import vPeriod
from radicale import storage as radicale_storage

from visio_core import ical, itip, recurrence
from visio_core.accounts import Account

log = logging.getLogger("visio.dav")

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
ET.register_namespace("", DAV)
ET.register_namespace("C", CALDAV)
_ADDRESS_SET = f"{{{CALDAV}}}calendar-user-address-set"
_INBOX = f"{{{CALDAV}}}schedule-inbox-URL"
_OUTBOX = f"{{{CALDAV}}}schedule-outbox-URL"
_OURS = (_ADDRESS_SET, _INBOX, _OUTBOX)


def _href(text: str) -> ET.Element:
    el = ET.Element(f"{{{DAV}}}href")
    el.text = text
    return el


def complete_propfind(
    answer: bytes,
    base_prefix: str,
    account_of: Callable[[str], Account | None],
    addresses_of: Callable[[Account], list[str]],
) -> bytes:
    """Fill in the scheduling properties of principals in a PROPFIND multistatus."""
    try:
        root = ET.fromstring(answer)  # noqa: S314 - Radicale's own XML
    except ET.ParseError:
        return answer
    changed = False
    for response in root.findall(f"{{{DAV}}}response"):
        href = response.findtext(f"{{{DAV}}}href") or ""
        path = href[len(base_prefix) :] if href.startswith(base_prefix) else href
        parts = [p for p in path.split("/") if p]
        if len(parts) != 1:
            continue
        account = account_of(parts[0])
        if account is None:
            continue
        principal = f"{base_prefix}/{parts[0]}/"
        values = {
            _ADDRESS_SET: [*(f"mailto:{a}" for a in addresses_of(account)), principal],
            _INBOX: [f"{principal}inbox/"],
            _OUTBOX: [f"{principal}outbox/"],
        }
        ok = _propstat(response, "200")
        for propstat in response.findall(f"{{{DAV}}}propstat"):
            prop = propstat.find(f"{{{DAV}}}prop")
            if prop is None:
                continue
            for el in list(prop):
                if el.tag in _OURS:
                    prop.remove(el)
                    new = ET.SubElement(ok.find(f"{{{DAV}}}prop"), el.tag)  # type: ignore[arg-type]
                    for text in values[el.tag]:
                        new.append(_href(text))
                    changed = True
            if len(prop) == 0 and propstat is not ok:
                response.remove(propstat)
    if not changed:
        return answer
    body: bytes = ET.tostring(root, encoding="utf-8")
    return body


def _propstat(response: ET.Element, code: str) -> ET.Element:
    for propstat in response.findall(f"{{{DAV}}}propstat"):
        if code in (propstat.findtext(f"{{{DAV}}}status") or ""):
            return propstat
    propstat = ET.SubElement(response, f"{{{DAV}}}propstat")
    ET.SubElement(propstat, f"{{{DAV}}}prop")
    status = ET.SubElement(propstat, f"{{{DAV}}}status")
    status.text = f"HTTP/1.1 {code} OK"
    return propstat


# free/busy ---------------------------------------------------------------------------
def busy_periods(
    calendars: Iterable[radicale_storage.BaseCollection], start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """Busy time of one person between start and end (opaque, not cancelled events)."""
    lo, hi = int(start.timestamp()), int(end.timestamp())
    found: list[tuple[dt.datetime, dt.datetime]] = []
    for col in calendars:
        for item in col.get_all():
            if item.component_name != "VEVENT":
                continue
            t0, t1 = item.time_range
            if t1 <= lo or t0 >= hi:
                continue  # Radicale's cached range says it cannot overlap
            try:
                cal = ical.parse(item.serialize())
                for occ in recurrence.between(cal, start, end):
                    if str(occ.get("TRANSP", "")).upper() == "TRANSPARENT":
                        continue
                    if str(occ.get("STATUS", "")).upper() == "CANCELLED":
                        continue
                    s, e = occ["DTSTART"].dt, occ.get("DTEND")
                    if not isinstance(s, dt.datetime):
                        continue  # all-day items do not block meeting times
                    e_dt = e.dt if e is not None else s
                    found.append((s.astimezone(dt.UTC), e_dt.astimezone(dt.UTC)))
            except Exception:  # one odd event must not hide the rest of the day
                log.warning("free/busy skipped %s", item.href)
    return _merge(found)


def _merge(periods: list[tuple[dt.datetime, dt.datetime]]) -> list[tuple[dt.datetime, dt.datetime]]:
    merged: list[tuple[dt.datetime, dt.datetime]] = []
    for s, e in sorted(periods):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def freebusy_response(
    request_text: str,
    calendars_of: Callable[[str], list[radicale_storage.BaseCollection] | None],
) -> str:
    """The CALDAV:schedule-response to a VFREEBUSY REQUEST (RFC 6638 5)."""
    cal = ical.parse(request_text)
    fb_req = next(iter(cal.walk("VFREEBUSY")), None)
    if fb_req is None:
        raise ValueError("no VFREEBUSY component in the request")
    start = _utc(getattr(fb_req.get("DTSTART"), "dt", None))
    end = _utc(getattr(fb_req.get("DTEND"), "dt", None))
    if end <= start or end - start > dt.timedelta(days=370):
        raise ValueError("the free/busy range must be positive and at most a year")
    root = ET.Element(f"{{{CALDAV}}}schedule-response")
    attendees = fb_req.get("ATTENDEE")
    for att in attendees if isinstance(attendees, list) else [attendees]:
        if att is None:
            continue
        address = itip.address_of(att)
        resp = ET.SubElement(root, f"{{{CALDAV}}}response")
        recipient = ET.SubElement(resp, f"{{{CALDAV}}}recipient")
        recipient.append(_href(str(att)))
        status = ET.SubElement(resp, f"{{{CALDAV}}}request-status")
        calendars = calendars_of(address) if address else None
        if calendars is None:
            status.text = "3.7;Invalid calendar user"
            continue
        status.text = "2.0;Success"
        data = ET.SubElement(resp, f"{{{CALDAV}}}calendar-data")
        data.text = _reply(fb_req, att, busy_periods(calendars, start, end), start, end)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode")


def _utc(value: object) -> dt.datetime:
    if not isinstance(value, dt.date):
        raise ValueError("DTSTART and DTEND are required")
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _reply(
    req: Any,
    att: Any,
    busy: list[tuple[dt.datetime, dt.datetime]],
    start: dt.datetime,
    end: dt.datetime,
) -> str:
    out = Calendar()
    out.add("PRODID", "-//Visio//Free busy//FR")
    out.add("VERSION", "2.0")
    out.add("METHOD", "REPLY")
    fb = FreeBusy()
    fb.add("UID", str(req.get("UID", "")) or "freebusy")
    fb.add("DTSTAMP", dt.datetime.now(dt.UTC))
    fb.add("DTSTART", start)
    fb.add("DTEND", end)
    if "ORGANIZER" in req:
        fb.add("ORGANIZER", req["ORGANIZER"])
    fb.add("ATTENDEE", att)
    for s, e in busy:
        fb.add("FREEBUSY", vPeriod((s, e)), parameters={"FBTYPE": "BUSY"})
    out.add_component(fb)
    return ical.serialize(out)
