"""The plan form and the events it becomes: pure functions, no I/O.

One meeting is one VEVENT (a series is one event with an RRULE); editing one
occurrence writes an override with RECURRENCE-ID, deleting one adds an EXDATE
(RFC 5545, STANDARDS.md). The CalDAV plugin adds the room, the link and the
invitations, exactly as for a calendar app.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event, vCalAddress, vRecur

from visio_core import conference, ical, itip
from visio_core.accounts import Account

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
KINDS = {"visio": "Visio", "audio": "Audio"}
_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")
MAX_RANGE = dt.timedelta(days=366)


@dataclass
class Form:
    """What the person typed, kept as text so the page shows it back unchanged."""

    subject: str = ""
    date: str = ""
    start: str = ""
    duration: str = "60"
    end: str = ""
    periodic: bool = False
    days: list[str] = field(default_factory=list)
    repeat_from: str = ""
    repeat_until: str = ""
    invitees: str = ""
    kind: str = "visio"
    record: bool = False
    streaming: bool = False
    stream_url: str = ""
    description: str = ""

    @classmethod
    def from_post(cls, data: Mapping[str, object], days: list[str]) -> Form:
        def text(name: str, limit: int = 200) -> str:
            return str(data.get(name, "")).strip()[:limit]

        return cls(
            subject=text("subject"),
            date=text("date"),
            start=text("start"),
            duration=text("duration"),
            end=text("end"),
            periodic=bool(data.get("periodic")),
            days=[d for d in days if d in DAYS],
            repeat_from=text("repeat_from"),
            repeat_until=text("repeat_until"),
            invitees=text("invitees", 20_000),
            kind=text("kind") if text("kind") in KINDS else "visio",
            record=bool(data.get("record")),
            streaming=bool(data.get("streaming")),
            stream_url=text("stream_url", 2000),
            description=text("description", 10_000),
        )


@dataclass(frozen=True)
class Draft:
    subject: str
    start: dt.datetime  # aware, in the user's zone
    duration: dt.timedelta
    days: tuple[str, ...]  # empty: a single meeting
    until: dt.date | None
    invitees: tuple[str, ...]
    kind: str
    record: bool
    stream_url: str
    description: str

    @property
    def end(self) -> dt.datetime:
        return self.start + self.duration


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        return None


def _time(value: str) -> dt.time | None:
    try:
        return dt.time.fromisoformat(value)
    except ValueError:
        return None


def split_addresses(text: str) -> list[str]:
    return [a.strip().lower() for a in re.split(r"[,;\s]+", text) if a.strip()]


def validate(form: Form, tz: ZoneInfo) -> tuple[Draft | None, dict[str, tuple[str, str]]]:
    """The draft, or errors: field -> (text key, value to show in the message)."""
    errors: dict[str, tuple[str, str]] = {}
    if not form.subject:
        errors["subject"] = ("err_subject", "")
    day = _date(form.date)
    if day is None:
        errors["date"] = ("err_date", "")
    start = _time(form.start)
    if start is None:
        errors["start"] = ("err_start", "")
    minutes = int(form.duration) if form.duration.isdigit() else 0
    end = _time(form.end)
    if not minutes and start and end:  # only the end was given: the duration follows
        span = dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)
        minutes = span.seconds // 60
    if not 5 <= minutes <= 24 * 60:
        errors["duration"] = ("err_duration", "")
    days: tuple[str, ...] = ()
    until: dt.date | None = None
    first = day
    if form.periodic:
        days = tuple(d for d in DAYS if d in form.days)
        if not days:
            errors["days"] = ("err_days", "")
        first = _date(form.repeat_from) or day
        until = _date(form.repeat_until)
        if until is None or first is None or until < first or until - first > MAX_RANGE:
            errors["repeat_until"] = ("err_until", "")
    invitees: list[str] = []
    for address in split_addresses(form.invitees):
        if not _EMAIL.match(address):
            errors["invitees"] = ("err_invitees", address)
            break
        if address not in invitees:
            invitees.append(address)
    stream = form.stream_url if form.streaming else ""
    if stream and not stream.lower().startswith(("rtmp://", "rtmps://")):
        errors["stream_url"] = ("err_stream", "")
    # The calendar server refuses control characters (other clients fail on them):
    # said here, on the field, rather than as a refused save.
    for name in ("subject", "invitees", "stream_url", "description"):
        code = ical.control_in_text(getattr(form, name))
        if code:
            errors[name] = ("err_control", code)
    if errors or first is None or start is None:
        return None, errors
    if days:  # RFC 5545: DTSTART is itself an occurrence, so it must be one of the days
        while DAYS[first.weekday()] not in days:
            first += dt.timedelta(days=1)
    return (
        Draft(
            subject=form.subject,
            start=dt.datetime.combine(first, start, tz),
            duration=dt.timedelta(minutes=minutes),
            days=days,
            until=until,
            invitees=tuple(invitees),
            kind=form.kind,
            record=form.record,
            stream_url=stream,
            description=form.description,
        ),
        {},
    )


def new_uid() -> str:
    return f"{uuid.uuid4()}@visio-portal"


def _rrule(draft: Draft) -> vRecur | None:
    if not draft.days or draft.until is None:
        return None
    # UNTIL in UTC at the end of the last day (RFC 5545: UTC when DTSTART has a TZID).
    last = dt.datetime.combine(draft.until, dt.time(23, 59, 59), draft.start.tzinfo)
    return vRecur({"FREQ": "WEEKLY", "BYDAY": list(draft.days), "UNTIL": last.astimezone(dt.UTC)})


def _set(ev: Event, name: str, value: object) -> None:
    if name in ev:
        del ev[name]
    if value not in (None, ""):
        ev.add(name, value)


def _people(ev: Event, draft: Draft, organizer: Account) -> None:
    """Attendees as typed; answers already given by people who stay are kept."""
    known = itip.attendees(ev)
    if "ATTENDEE" in ev:
        del ev["ATTENDEE"]
    for address in draft.invitees:
        if address == organizer.email.lower():
            continue  # the server invites the organizer anyway
        att = known.get(address)
        if att is None:
            att = vCalAddress(f"mailto:{address}")
            att.params.update({"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION"})
            att.params["RSVP"] = "TRUE"
        ev.add("ATTENDEE", att)


def _fill(ev: Event, draft: Draft, organizer: Account, keep_date: bool = False) -> None:
    _set(ev, "SUMMARY", draft.subject)
    if not keep_date:
        _set(ev, "DTSTART", draft.start)
        _set(ev, "DTEND", draft.end)
    if "DURATION" in ev:
        del ev["DURATION"]
    _set(ev, "DESCRIPTION", draft.description)
    _set(ev, "CATEGORIES", [KINDS[draft.kind]])
    _set(ev, "X-VISIO-RECORD", "TRUE" if draft.record else "")
    _set(ev, "X-VISIO-STREAM-URL", draft.stream_url)
    organizer_address = vCalAddress(f"mailto:{organizer.email}")
    organizer_address.params["CN"] = organizer.name or organizer.login
    _set(ev, "ORGANIZER", organizer_address)
    _people(ev, draft, organizer)
    _set(ev, "DTSTAMP", dt.datetime.now(dt.UTC))


def new_event(draft: Draft, organizer: Account, uid: str | None = None) -> Calendar:
    cal = Calendar()
    cal.add("PRODID", "-//Visio//Portal//FR")
    cal.add("VERSION", "2.0")
    ev = Event()
    ev.add("UID", uid or new_uid())
    _fill(ev, draft, organizer)
    rule = _rrule(draft)
    if rule is not None:
        ev.add("RRULE", rule)
    cal.add_component(ev)
    cal.add_missing_timezones()
    return cal


def _master(cal: Calendar) -> Event:
    found = conference.master(cal)
    if found is None:
        raise ValueError("no master event")
    return found


def _same_moment(a: object, b: dt.datetime) -> bool:
    return isinstance(a, dt.datetime) and a.astimezone(dt.UTC) == b.astimezone(dt.UTC)


def _override(cal: Calendar, rid: dt.datetime) -> Event | None:
    for ev in conference.vevents(cal):
        value = ev.get("RECURRENCE-ID")
        if value is not None and _same_moment(value.dt, rid):
            return ev
    return None


def _rid_in_master_zone(master: Any, rid: dt.datetime) -> dt.datetime:
    start = master["DTSTART"].dt
    zone = start.tzinfo if isinstance(start, dt.datetime) and start.tzinfo else dt.UTC
    return rid.astimezone(zone)


def save_occurrence(cal: Calendar, rid: dt.datetime, draft: Draft, organizer: Account) -> Calendar:
    """ "Sauvegarder" on one occurrence: an override carrying RECURRENCE-ID."""
    master = _master(cal)
    if "RRULE" not in master and "RDATE" not in master:
        return save_series(cal, None, draft, organizer)[0]
    ev = _override(cal, rid)
    if ev is None:
        ev = Event()
        for name, value in master.property_items(recursive=False):
            if name not in ("BEGIN", "END", "RRULE", "RDATE", "EXDATE", "ATTENDEE"):
                ev.add(name, value)
        ev["ATTENDEE"] = master.get("ATTENDEE", [])
        ev.add("RECURRENCE-ID", _rid_in_master_zone(master, rid))
        cal.add_component(ev)
    _fill(ev, draft, organizer)
    cal.add_missing_timezones()
    return cal


def save_series(
    cal: Calendar, rid: dt.datetime | None, draft: Draft, organizer: Account
) -> tuple[Calendar, dt.timedelta]:
    """ "Sauvegarder Séries": the master moves by as much as the edited occurrence moved.

    Returns the shift, so the caller can name the same occurrence afterwards; the
    EXDATEs and overrides' RECURRENCE-IDs move with the series, or they would name
    occurrences that no longer exist.
    """
    master: Any = _master(cal)
    old_start = master["DTSTART"].dt
    if rid is not None and isinstance(old_start, dt.datetime):
        start = old_start + (draft.start - rid)  # same shift as the occurrence, same zone
        start = dt.datetime.combine(start.date(), draft.start.time(), draft.start.tzinfo)
    else:
        start = draft.start
    shift = start - old_start if isinstance(old_start, dt.datetime) else dt.timedelta()
    moved = Draft(**{**draft.__dict__, "start": start})
    _fill(master, moved, organizer)
    if moved.days:
        _set(master, "RRULE", _rrule(moved))
    if shift:
        values = [getattr(d, "dt", d) for d in itip.exdates(master).values()]
        exdates = [d for d in values if isinstance(d, dt.datetime)]
        if "EXDATE" in master:
            del master["EXDATE"]
        for moment in exdates:
            master.add("EXDATE", moment + shift)
        other: Any
        for other in conference.vevents(cal):
            if other is not master and "RECURRENCE-ID" in other:
                original = other["RECURRENCE-ID"].dt
                del other["RECURRENCE-ID"]
                other.add("RECURRENCE-ID", original + shift)
    cal.add_missing_timezones()
    return cal, shift


def delete_occurrence(cal: Calendar, rid: dt.datetime) -> Calendar:
    """ "Supprimer" on one occurrence: an EXDATE on the master, its override gone."""
    master = _master(cal)
    found = _override(cal, rid)
    if found is not None:
        cal.subcomponents.remove(found)
    master.add("EXDATE", _rid_in_master_zone(master, rid))
    _set(master, "DTSTAMP", dt.datetime.now(dt.UTC))
    return cal


def is_recurring(cal: Calendar) -> bool:
    master = conference.master(cal)
    return master is not None and ("RRULE" in master or "RDATE" in master)


def user_description(ev: Event) -> str:
    """The description without the block the server writes (it is rewritten on save)."""
    text = str(ev.get("DESCRIPTION", ""))
    return text.split(conference.BLOCK_START, 1)[0].rstrip()


def form_of(ev: Any, master: Any, tz: ZoneInfo, organizer_email: str) -> Form:
    """The edit form for one occurrence (`ev`: the expanded occurrence)."""
    start = ev["DTSTART"].dt.astimezone(tz)
    end_prop = ev.get("DTEND")
    end = end_prop.dt.astimezone(tz) if end_prop is not None else start
    rule = master.get("RRULE")
    days: list[str] = []
    until = ""
    if rule is not None:
        days = [str(d) for d in rule.get("BYDAY", [])]
        limit = rule.get("UNTIL")
        limit = limit[0] if isinstance(limit, list) and limit else limit
        if isinstance(limit, dt.datetime):
            until = limit.astimezone(tz).date().isoformat()
        elif isinstance(limit, dt.date):
            until = limit.isoformat()
    cats = {c.lower() for c in conference.categories_of(ev)}
    addresses = [a for a in itip.attendees(ev) if a != organizer_email.lower()]
    stream = str(ev.get("X-VISIO-STREAM-URL", ""))
    return Form(
        subject=str(ev.get("SUMMARY", "")),
        date=start.date().isoformat(),
        start=start.strftime("%H:%M"),
        duration=str(int((end - start).total_seconds() // 60)),
        end=end.strftime("%H:%M"),
        periodic=rule is not None,
        days=days,
        repeat_from=master["DTSTART"].dt.astimezone(tz).date().isoformat() if rule else "",
        repeat_until=until,
        invitees="\n".join(addresses),
        kind="audio" if "audio" in cats else "visio",
        record=str(ev.get("X-VISIO-RECORD", "")).upper() == "TRUE",
        streaming=bool(stream),
        stream_url=stream,
        description=user_description(ev),
    )


def serialize(cal: Calendar) -> str:
    return ical.serialize(cal)
