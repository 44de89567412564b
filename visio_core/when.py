"""When a meeting happens: occurrences from the stored event, and how to say them.

Occurrences come from recurring-ical-events over the event as stored, so a
reschedule, an EXDATE or a cancelled override takes effect at once. Iteration is
lazy: an RRULE without end costs only the occurrences actually looked at.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from icalendar import Calendar

from visio_core import ical, recurrence

log = logging.getLogger("visio.when")
_DAYS = {
    "fr": ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
    "en": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
}
_MONTHS = {
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
}


@dataclass(frozen=True)
class Occurrence:
    start: dt.datetime
    end: dt.datetime
    zone: str  # the event's own time zone name, e.g. "Europe/Paris"
    cancelled: bool = False


def _aware(value: dt.date | dt.datetime, fallback: dt.tzinfo) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(0, 0), fallback)
    return value if value.tzinfo is not None else value.replace(tzinfo=fallback)


def zone_name(value: dt.date | dt.datetime) -> str:
    tz = value.tzinfo if isinstance(value, dt.datetime) else None
    if tz is None:
        return "UTC"
    key = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if key:
        return str(key)
    try:  # a zone of the event's own VTIMEZONE (Outlook: "Romance Standard Time")
        moment = value if isinstance(value, dt.datetime) else None
        return str(getattr(tz, "_tzid", None) or tz.tzname(moment) or "UTC")
    except (AttributeError, TypeError, ValueError):
        return "UTC"


def occurrences_after(cal: Calendar, after: dt.datetime, limit: int = 1) -> list[Occurrence]:
    """Up to `limit` occurrences that end after `after`, cancelled ones left out."""
    found: list[Occurrence] = []
    try:
        for occ in _listed(cal, after, limit):
            found.append(occ)
    except recurrence.TooCostly:
        log.warning("occurrences of %s cannot be computed: too costly", ical.uid_of(cal))
    return found


def _listed(cal: Calendar, after: dt.datetime, limit: int) -> Iterator[Occurrence]:
    seen = 0
    for comp in recurrence.after(cal, after):
        if str(comp.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start = comp.get("DTSTART").dt
        end_prop = comp.get("DTEND")
        zone = zone_name(start)
        tz = _tz(zone)
        start_dt = _aware(start, tz)
        if end_prop is not None:
            end_dt = _aware(end_prop.dt, tz)
        elif "DURATION" in comp:
            end_dt = start_dt + comp["DURATION"].dt
        else:
            end_dt = start_dt + (
                dt.timedelta(days=1) if not isinstance(start, dt.datetime) else dt.timedelta(0)
            )
        yield Occurrence(start_dt, end_dt, zone)
        seen += 1
        if seen >= limit:
            return


def next_occurrence(cal: Calendar, now: dt.datetime) -> Occurrence | None:
    found = occurrences_after(cal, now, 1)
    return found[0] if found else None


def _tz(zone: str) -> dt.tzinfo:
    try:
        return ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        return dt.UTC


def format_range(occ: Occurrence, lang: str) -> str:
    """'jeudi 3 décembre 2026, 10:00 – 11:30 (Europe/Paris)' in the event's own zone."""
    tz = _tz(occ.zone)
    if tz is dt.UTC and occ.zone != "UTC" and occ.start.tzinfo is not None:
        tz = occ.start.tzinfo  # not an IANA name: the event's own VTIMEZONE rules
    start, end = occ.start.astimezone(tz), occ.end.astimezone(tz)
    days, months = _DAYS.get(lang, _DAYS["fr"]), _MONTHS.get(lang, _MONTHS["fr"])

    def day(d: dt.datetime) -> str:
        return f"{days[d.weekday()]} {d.day} {months[d.month - 1]} {d.year}"

    if start.date() == end.date() or end - start <= dt.timedelta(0):
        text = f"{day(start)}, {start:%H:%M} – {end:%H:%M}"
    else:
        text = f"{day(start)}, {start:%H:%M} – {day(end)}, {end:%H:%M}"
    return f"{text} ({occ.zone})"
