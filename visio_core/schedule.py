"""When a room takes people in, read from the event as stored (pure functions).

A room opens `early` before each occurrence's start and stays joinable until its
end plus `grace`; past that it only stays open while someone is inside (a
meeting is never cut on overrun). The occurrence people are in is identified by
its RECURRENCE-ID (empty for a one-off event, so moving a one-off meeting does
not throw out the people holding it); when that occurrence disappears
(EXDATE, a cancelled override) the room closes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Literal

from icalendar import Calendar

from visio_core import ical, recurrence

log = logging.getLogger("visio.schedule")
State = Literal["open", "waiting", "ended"]
_SEARCH_DAYS = 400  # how far ahead the next opening is looked for


@dataclass(frozen=True)
class Window:
    state: State
    opens_at: dt.datetime | None = None  # when waiting
    occurrence: str | None = None  # key of the occurrence in progress, when open
    start: dt.datetime | None = None
    end: dt.datetime | None = None


def _aware(value: dt.date | dt.datetime) -> dt.datetime:
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time(0, 0), dt.UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def _recurring(cal: Calendar) -> bool:
    events = cal.walk("VEVENT")
    return len(events) > 1 or any("RRULE" in ev or "RDATE" in ev for ev in events)


def _span(comp: Any) -> tuple[dt.datetime, dt.datetime]:
    start = _aware(comp["DTSTART"].dt)
    if comp.get("DTEND") is not None:
        end = _aware(comp["DTEND"].dt)
    elif "DURATION" in comp:
        end = start + comp["DURATION"].dt
    else:
        all_day = not isinstance(comp["DTSTART"].dt, dt.datetime)
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta())
    return start, end


def _key(comp: Any, recurring: bool) -> str:
    rid = comp.get("RECURRENCE-ID")
    if not recurring or rid is None:
        return ""
    return _aware(rid.dt).astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _live(cal: Calendar, after: dt.datetime, before: dt.datetime) -> list[Any]:
    return [
        c
        for c in recurrence.between(cal, after, before)
        if str(c.get("STATUS", "")).upper() != "CANCELLED"
    ]


def window(event: str, now: dt.datetime, early: dt.timedelta, grace: dt.timedelta) -> Window:
    """Whether a new participant may come in at `now`, and if not, when."""
    cal = ical.parse(event)
    try:
        return _window(cal, now, early, grace)
    except recurrence.TooCostly:
        log.warning("room schedule of %s cannot be computed: too costly", ical.uid_of(cal))
        return Window("ended")


def _window(cal: Calendar, now: dt.datetime, early: dt.timedelta, grace: dt.timedelta) -> Window:
    recurring = _recurring(cal)
    for comp in recurrence.after(cal, now - grace):
        if str(comp.get("STATUS", "")).upper() == "CANCELLED":
            continue
        start, end = _span(comp)
        if end + grace <= now:
            continue
        if start - early <= now:
            return Window("open", None, _key(comp, recurring), start, end)
        if start - now > dt.timedelta(days=_SEARCH_DAYS):
            break
        return Window("waiting", start - early, None, start, end)
    return Window("ended")


def occurrence_alive(event: str, key: str, around: dt.datetime) -> bool:
    """Whether the occurrence `key` (from `window`) still takes place."""
    cal = ical.parse(event)
    recurring = _recurring(cal)
    if not key:
        master = [c for c in cal.walk("VEVENT") if "RECURRENCE-ID" not in c]
        return bool(master) and str(master[0].get("STATUS", "")).upper() != "CANCELLED"
    day = dt.timedelta(days=2)
    try:
        return any(_key(c, recurring) == key for c in _live(cal, around - day, around + day))
    except recurrence.TooCostly:
        return True  # people in the room are not put out for what cannot be computed


def _master(cal: Calendar) -> Any:
    events = cal.walk("VEVENT")
    plain = [e for e in events if "RECURRENCE-ID" not in e]
    chosen = plain or events
    return chosen[0] if chosen else None


def lobby_enabled(event: str, options: dict[str, Any]) -> bool:
    """`X-VISIO-LOBBY:FALSE` on the event (or the portal's option) lets everyone in."""
    if options.get("lobby") is False:
        return False
    master = _master(ical.parse(event))
    value = str(master.get("X-VISIO-LOBBY", "TRUE")).strip().upper() if master else "TRUE"
    return value not in ("FALSE", "NO", "0", "OFF")


def invited_addresses(event: str) -> set[str]:
    """Lower-cased e-mail addresses of the organizer and attendees."""
    master = _master(ical.parse(event))
    if master is None:
        return set()
    found: set[str] = set()
    attendees = master.get("ATTENDEE", [])
    for value in [*(attendees if isinstance(attendees, list) else [attendees])]:
        found.add(str(value))
    if master.get("ORGANIZER") is not None:
        found.add(str(master["ORGANIZER"]))
    return {a.split(":", 1)[1].strip().lower() for a in found if a.lower().startswith("mailto:")}
