"""`visio rooms rebuild`: the registry recreated from the stored calendars alone."""

from __future__ import annotations

import logging
from typing import Any

from icalendar import Calendar
from radicale import storage as radicale_storage

from caldav_plugin import agenda_index, services
from caldav_plugin.app import radicale_configuration
from caldav_plugin.homes import every_calendar
from caldav_plugin.rooms import meeting_options, owner_of
from caldav_plugin.scheduling import role_of
from visio_core import conference, ical, tokens
from visio_core.registry import Room
from visio_core.settings import Settings

log = logging.getLogger("visio.rebuild")


def room_of(svc: services.Services, calendar_path: str, href: str, cal: Calendar) -> Room | None:
    """The registry row a stored event stands for, as the PUT that stored it wrote it.

    Only the organizer's copy stands for a room, and only when it carries the
    server's mark for this owner and UID (tokens.room_claim); a copy written
    before marks existed carries none and is taken unless a marked copy claims
    the same room (`rooms_from_calendars`). Any other copy grants nothing.
    """
    identity = conference.room_identity(cal)
    kind = conference.room_kind(cal, svc.settings.rules)
    if identity is None or kind is None:
        return None
    owner = owner_of(calendar_path)
    if role_of(cal, svc.accounts.get(owner), svc.accounts).kind == "attendee":
        return None
    room_id, number = identity
    if not tokens.is_room_number(number) or ownership(svc, owner, cal) == FORGED:
        return None
    token = tokens.room_token(svc.key, room_id)
    text = ical.serialize(cal)
    main = conference.master(cal)
    return Room(
        room_id=room_id,
        uid=ical.uid_of(cal),
        owner=owner,
        calendar_path=calendar_path.strip("/"),
        href=href,
        kind=kind,
        token_hash=tokens.hash_token(token),
        room_number=number,
        summary=str(main.get("SUMMARY", "")) if main is not None else "",
        event=ical.unfold(text).replace(token, ""),
        options=meeting_options(cal, svc.settings),
    )


VERIFIED, LEGACY, FORGED = "verified", "legacy", "forged"


def ownership(svc: services.Services, owner: str, cal: Calendar) -> str:
    """Whether this copy's room is its own: marked by the server, unmarked (written
    before marks existed), or marked for someone else (copied: it claims nothing)."""
    identity = conference.room_identity(cal)
    claim = conference.room_claim(cal)
    if identity is None or not claim:
        return LEGACY
    ok = tokens.check_room_claim(svc.key, identity[0], owner, ical.uid_of(cal), claim)
    return VERIFIED if ok else FORGED


def parsed(item: Any) -> Calendar | None:
    try:
        return ical.parse(item.serialize())
    except ValueError:
        log.warning("skipping unreadable %s", item.href)
        return None


def rooms_from_calendars(
    svc: services.Services, storage: Any, report: list[str] | None = None
) -> list[Room]:
    """The rooms of every calendar (call with the storage lock held).

    Deterministic whatever order the folders are read in: a room goes to the copy
    the server marked as its owner's; among unmarked copies (written before marks
    existed), to the one the registry already names, then by path. Every other
    copy that carries a room id is named in `report`.
    """
    report = report if report is not None else []
    rows = svc.registry.all()
    known = {(r.owner, r.uid): r.room_id for r in rows}
    # One owner may hold the same UID in two calendars: the room is where the last
    # write put it (the registry's row), as long as that copy still names it.
    located = {(r.owner, r.uid): (r.calendar_path, r.href) for r in rows}
    found: list[tuple[int, int, str, Room]] = []
    for calendar in every_calendar(storage):
        for item in calendar.get_all():
            cal = parsed(item)
            if cal is None:
                continue
            place = f"{calendar.path}/{item.href}"
            owner = owner_of(calendar.path)
            room = room_of(svc, calendar.path, item.href or "", cal)
            if room is None:
                identity = conference.room_identity(cal)
                if identity and ownership(svc, owner, cal) == FORGED:
                    report.append(f"{place} claims room {identity[0]}, which is not its own")
                continue
            if ownership(svc, owner, cal) == VERIFIED:
                rank = 0
            else:
                rank = 1 if known.get((owner, room.uid)) == room.room_id else 2
            here = located.get((owner, room.uid)) == (room.calendar_path, room.href)
            found.append((rank, 0 if here else 1, place, room))
    rooms: list[Room] = []
    taken: dict[str, str] = {}
    for _rank, _here, place, room in sorted(found, key=lambda f: (f[0], f[1], f[2])):
        holder = taken.get(room.room_id) or taken.get(room.room_number)
        if holder is not None:
            report.append(f"{place} claims room {room.room_id}, which is {holder}'s")
            continue
        taken[room.room_id] = taken[room.room_number] = f"{room.owner}/{room.uid}"
        rooms.append(room)
    for line in report:
        log.warning("rebuild: %s", line)
    return rooms


def rebuild(
    settings: Settings, sections: dict[str, dict[str, str]], report: list[str] | None = None
) -> int:
    svc = services.Services(settings)
    services.install(svc)
    storage = radicale_storage.load(radicale_configuration(settings, sections))
    # The write lock from reading the first calendar to the last row: a PUT that the
    # running server answers meanwhile is neither half-read nor wiped by the new rows.
    with storage.acquire_lock("w"):
        rooms = rooms_from_calendars(svc, storage, report)  # parsed before the database's lock
        count = svc.registry.replace_all(rooms)
    agenda_index.index_calendars(storage, svc.db, everything=True)
    return count
