"""`visio rooms rebuild`: the registry recreated from the stored calendars alone."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from radicale import storage as radicale_storage

from caldav_plugin import agenda_index, services
from caldav_plugin.app import radicale_configuration
from caldav_plugin.homes import every_calendar
from caldav_plugin.rooms import meeting_options, owner_of
from visio_core import conference, ical, tokens
from visio_core.registry import Room
from visio_core.settings import Settings

log = logging.getLogger("visio.rebuild")


def rooms_from_calendars(settings: Settings, sections: dict[str, dict[str, str]]) -> Iterator[Room]:
    svc = services.Services(settings)
    services.install(svc)
    storage = radicale_storage.load(radicale_configuration(settings, sections))
    seen_numbers: set[str] = set()
    seen_ids: set[str] = set()
    with storage.acquire_lock("r"):
        for calendar in every_calendar(storage):
            for item in calendar.get_all():
                try:
                    cal = ical.parse(item.serialize())
                except ValueError:
                    log.warning("skipping unreadable %s/%s", calendar.path, item.href)
                    continue
                identity = conference.room_identity(cal)
                kind = conference.room_kind(cal, settings.rules)
                if identity is None or kind is None:
                    continue
                room_id, number = identity
                if (
                    room_id in seen_ids
                    or number in seen_numbers
                    or not tokens.is_room_number(number)
                ):
                    log.warning(
                        "skipping %s/%s: room %s already taken", calendar.path, item.href, room_id
                    )
                    continue
                seen_ids.add(room_id)
                seen_numbers.add(number)
                token = tokens.room_token(svc.key, room_id)
                text = ical.serialize(cal)
                main = conference.master(cal)
                yield Room(
                    room_id=room_id,
                    uid=ical.uid_of(cal),
                    owner=owner_of(calendar.path),
                    calendar_path=calendar.path.strip("/"),
                    href=item.href or "",
                    kind=kind,
                    token_hash=tokens.hash_token(token),
                    room_number=number,
                    summary=str(main.get("SUMMARY", "")) if main is not None else "",
                    event=ical.unfold(text).replace(token, ""),
                    options=meeting_options(cal, settings),
                )


def rebuild(settings: Settings, sections: dict[str, dict[str, str]]) -> int:
    rooms = list(rooms_from_calendars(settings, sections))
    count = services.get().registry.replace_all(rooms)
    storage = radicale_storage.load(radicale_configuration(settings, sections))
    agenda_index.index_calendars(storage, services.get().db, everything=True)
    return count
