"""`visio rooms rebuild`: the registry recreated from the stored calendars alone."""

from __future__ import annotations

import logging
from collections.abc import Iterator
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


def room_of(
    svc: services.Services, calendar_path: str, href: str, cal: Calendar
) -> Room | None:
    """The registry row a stored event stands for, as the PUT that stored it wrote it.

    A copy delivered to an attendee carries the organizer's room id and number, but
    the room is the organizer's: the copy that a PUT would give the room.
    """
    identity = conference.room_identity(cal)
    kind = conference.room_kind(cal, svc.settings.rules)
    if identity is None or kind is None:
        return None
    owner = owner_of(calendar_path)
    if role_of(cal, svc.accounts.get(owner), svc.accounts).kind == "attendee":
        return None
    room_id, number = identity
    if not tokens.is_room_number(number):
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


def parsed(item: Any) -> Calendar | None:
    try:
        return ical.parse(item.serialize())
    except ValueError:
        log.warning("skipping unreadable %s", item.href)
        return None


def rooms_from_calendars(svc: services.Services, storage: Any) -> Iterator[Room]:
    """The rooms of every calendar (call with the storage lock held)."""
    seen_numbers: set[str] = set()
    seen_ids: set[str] = set()
    for calendar in every_calendar(storage):
        for item in calendar.get_all():
            cal = parsed(item)
            room = room_of(svc, calendar.path, item.href or "", cal) if cal else None
            if room is None:
                continue
            if room.room_id in seen_ids or room.room_number in seen_numbers:
                log.warning(
                    "skipping %s/%s: room %s already taken", calendar.path, item.href, room.room_id
                )
                continue
            seen_ids.add(room.room_id)
            seen_numbers.add(room.room_number)
            yield room


def rebuild(settings: Settings, sections: dict[str, dict[str, str]]) -> int:
    svc = services.Services(settings)
    services.install(svc)
    storage = radicale_storage.load(radicale_configuration(settings, sections))
    # The write lock from reading the first calendar to the last row: a PUT that the
    # running server answers meanwhile is neither half-read nor wiped by the new rows.
    with storage.acquire_lock("w"):
        rooms = list(rooms_from_calendars(svc, storage))  # parsed before the database's lock
        count = svc.registry.replace_all(rooms)
    agenda_index.index_calendars(storage, svc.db, everything=True)
    return count
