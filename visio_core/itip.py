"""iTIP (RFC 5546) planning: which messages a change of an organizer's event sends.

Pure functions over icalendar objects. `plan` compares the stored version with
the new one and returns the messages to send; `bump_sequences` raises SEQUENCE
where the client forgot, so Outlook does not ignore the update.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from icalendar import Calendar, Event
from icalendar.prop import vCalAddress

from visio_core.conference import OUR_PROPS, vevents

# SEQUENCE rises on every change that is sent to attendees, not only on the
# "significant" ones of RFC 5546 (start, end, recurrence, location, status): a
# title or description fix must reach Outlook, which ignores an update whose
# SEQUENCE did not rise, and each (UID, RECURRENCE-ID, SEQUENCE, METHOD,
# recipient) is sent exactly once. PARTSTAT-only edits still change nothing.
# Never compared: they change on every save, or are per-attendee bookkeeping.
_IGNORED = {"DTSTAMP", "LAST-MODIFIED", "SEQUENCE", "CREATED", "ATTENDEE", *OUR_PROPS}
NO_SERVER_SCHEDULING = {"CLIENT", "NONE"}


_ADDRESS = re.compile(r"^(?:mailto:)?\s*([^@\s<>,;\0]+@[^@\s<>,;\0]+)\s*$", re.IGNORECASE)


def address_of(value: object) -> str:
    """'mailto:Alice@Example.org' -> 'alice@example.org' ('' when not a mail address)."""
    found = _ADDRESS.match(str(value).strip())
    return found.group(1).lower() if found else ""


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def attendees(ev: Event) -> dict[str, vCalAddress]:
    """Attendees by normalised address, in order; malformed addresses keyed by raw text."""
    found: dict[str, vCalAddress] = {}
    for a in _as_list(ev.get("ATTENDEE")):
        if isinstance(a, vCalAddress):
            found.setdefault(address_of(a) or str(a), a)
    return found


def server_schedules(att: vCalAddress) -> bool:
    return str(att.params.get("SCHEDULE-AGENT", "SERVER")).upper() not in NO_SERVER_SCHEDULING


def organizer_address(cal: Calendar) -> str:
    for ev in vevents(cal):
        if "ORGANIZER" in ev:
            return address_of(ev["ORGANIZER"])
    return ""


def rid_key(value: object) -> str:
    """A RECURRENCE-ID/EXDATE value as a comparable key (UTC when zoned)."""
    moment = getattr(value, "dt", value)
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC)
    return moment.isoformat() if isinstance(moment, dt.date) else str(moment)


def components(cal: Calendar | None) -> dict[str | None, Event]:
    """VEVENTs by RECURRENCE-ID key; the master under None."""
    if cal is None:
        return {}
    return {
        (rid_key(ev["RECURRENCE-ID"]) if "RECURRENCE-ID" in ev else None): ev for ev in vevents(cal)
    }


def exdates(ev: Event) -> dict[str, object]:
    """EXDATE values by key, each an icalendar date value with its parameters."""
    found: dict[str, object] = {}
    for prop in _as_list(ev.get("EXDATE")):
        for value in getattr(prop, "dts", []):
            found[rid_key(value)] = value
    return found


def _prop_text(ev: Event, name: str) -> tuple[bytes, ...]:
    return tuple(sorted(v.to_ical() for v in _as_list(ev.get(name)) if hasattr(v, "to_ical")))


def content(ev: Event, skip: Iterable[str] = ()) -> tuple[tuple[str, tuple[bytes, ...]], ...]:
    """What an update must carry to attendees. The attendee list is left out: adding or
    removing someone is told to that person alone, and PARTSTAT edits to nobody."""
    ignored = _IGNORED | set(skip)
    return tuple((name, _prop_text(ev, name)) for name in sorted(set(ev.keys()) - ignored))


def sequence(ev: Event | None) -> int:
    try:
        return int(ev.get("SEQUENCE", 0)) if ev is not None else 0
    except (TypeError, ValueError):
        return 0


def _set_sequence(ev: Event, value: int) -> None:
    ev.pop("SEQUENCE", None)
    ev.add("SEQUENCE", value)


def bump_sequences(old: Calendar | None, new: Calendar) -> None:
    """Raise SEQUENCE on each changed component whose client did not (changes `new`)."""
    before = components(old)
    for key, ev in components(new).items():
        prev = before.get(key)
        if prev is None:
            if key is not None and sequence(ev) < sequence(before.get(None)):
                _set_sequence(ev, sequence(before.get(None)))
            continue
        if content(prev) != content(ev) and sequence(ev) <= sequence(prev):
            _set_sequence(ev, sequence(prev) + 1)
        elif sequence(ev) < sequence(prev):
            _set_sequence(ev, sequence(prev))  # never go backwards


@dataclass(frozen=True)
class Outgoing:
    """One iTIP message to a set of recipients."""

    method: str  # REQUEST | CANCEL | REPLY
    recurrence_id: str | None  # key of the occurrence, None for the whole series
    sequence: int
    recipients: tuple[str, ...]


def recipients_of(ev: Event, exclude: Iterable[str] = ()) -> list[str]:
    skip = set(exclude)
    return [
        key
        for key, a in attendees(ev).items()
        if server_schedules(a) and address_of(a) and key not in skip
    ]


# Dates removed from a series in one change are told one CANCEL each up to this many;
# beyond it the whole series is sent again (one REQUEST): one PUT adding thousands of
# EXDATEs must not queue thousands of messages per attendee.
MAX_CANCELS = 50


def plan(old: Calendar | None, new: Calendar | None, organizer: str) -> list[Outgoing]:
    """The messages an organizer's change sends (None for `new` means the event was deleted).

    `organizer` (a normalised address) never receives a message from this plan;
    the caller adds the organizer's own copy when configured.
    """
    before, after = components(old), components(new)
    out: list[Outgoing] = []
    if new is None:
        master = before.get(None) or next(iter(before.values()), None)
        if master is not None:
            everyone = {r for ev in before.values() for r in recipients_of(ev, [organizer])}
            if everyone:
                out.append(Outgoing("CANCEL", None, sequence(master) + 1, tuple(sorted(everyone))))
        return out

    master_old, master_new = before.get(None), after.get(None)
    main = master_new or next(iter(after.values()))
    main_old = master_old if master_new is not None else before.get(next(iter(after)))
    current = recipients_of(main, [organizer])
    previous = recipients_of(main_old, [organizer]) if main_old is not None else []
    added = [r for r in current if r not in previous]
    removed = [r for r in previous if r not in current]
    seq = sequence(main)

    if main_old is None:
        if current:
            out.append(Outgoing("REQUEST", None, seq, tuple(current)))
    else:
        whole_changed = content(main_old) != content(main)
        known = exdates(main_old)  # once: an event may carry thousands of EXDATEs
        new_exdates = [k for k in exdates(main) if k not in known]
        only_exdates = whole_changed and new_exdates and _same_but_exdates(main_old, main)
        cancelled = _cancelled(main) and not _cancelled(main_old)
        if cancelled:  # the whole event called off, kept on the organizer's calendar
            everyone = {*current, *removed}
            return [Outgoing("CANCEL", None, seq, tuple(sorted(everyone)))] if everyone else []
        if len(new_exdates) > MAX_CANCELS:
            only_exdates = False  # one updated series says it, not a message per date
        if whole_changed and not only_exdates:
            if current:
                out.append(Outgoing("REQUEST", None, seq, tuple(current)))
        else:
            for key in new_exdates:
                if current:
                    out.append(Outgoing("CANCEL", key, seq, tuple(current)))
            if added:
                out.append(Outgoing("REQUEST", None, seq, tuple(added)))
            out.extend(_override_messages(before, after, main, organizer))
    if removed:
        out.append(Outgoing("CANCEL", None, seq, tuple(removed)))
    return out


def _cancelled(ev: Event) -> bool:
    return str(ev.get("STATUS", "")).upper() == "CANCELLED"


def _same_but_exdates(old: Event, new: Event) -> bool:
    """True when EXDATE is the only content that changed (so a CANCEL per date says it all)."""
    return content(old, skip=["EXDATE"]) == content(new, skip=["EXDATE"])


def _override_messages(
    before: dict[str | None, Event], after: dict[str | None, Event], main: Event, organizer: str
) -> list[Outgoing]:
    out: list[Outgoing] = []
    for key, ev in after.items():
        if key is None:
            continue
        prev = before.get(key)
        if prev is not None:
            # People added to or removed from this one occurrence are told about it.
            now, was = recipients_of(ev, [organizer]), recipients_of(prev, [organizer])
            gone = tuple(r for r in was if r not in now)
            if gone:
                out.append(Outgoing("CANCEL", key, sequence(ev), gone))
            if content(prev) == content(ev):
                new = tuple(r for r in now if r not in was)
                if new:
                    out.append(Outgoing("REQUEST", key, sequence(ev), new))
                continue
        people = recipients_of(ev, [organizer]) or recipients_of(main, [organizer])
        if not people:
            continue
        cancelled = str(ev.get("STATUS", "")).upper() == "CANCELLED"
        was_cancelled = prev is not None and str(prev.get("STATUS", "")).upper() == "CANCELLED"
        if cancelled and not was_cancelled:
            out.append(Outgoing("CANCEL", key, sequence(ev), tuple(people)))
        elif not cancelled:
            out.append(Outgoing("REQUEST", key, sequence(ev), tuple(people)))
    for key in before:
        if key is not None and key not in after:
            # An override removed by the organizer: that occurrence follows the series again.
            people = recipients_of(main, [organizer])
            if people:
                out.append(Outgoing("REQUEST", None, sequence(main), tuple(people)))
                break
    return out
