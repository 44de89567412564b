"""People's calendar homes, as the scheduler sees them: find a copy, pick a calendar."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from icalendar import Calendar
from radicale import storage as radicale_storage

from visio_core import ical


def href_for(uid: str) -> str:
    """A safe file name for a delivered copy."""
    safe = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in uid)[:120]
    return f"{safe or 'event'}.ics"


def every_calendar(
    storage: radicale_storage.BaseStorage,
) -> Iterator[radicale_storage.BaseCollection]:
    """Each calendar collection of each principal (call with the storage lock held)."""
    for principal in storage.discover("/", depth="1"):
        if not isinstance(principal, radicale_storage.BaseCollection) or not principal.path:
            continue
        for child in storage.discover(f"/{principal.path}/", depth="1"):
            if isinstance(child, radicale_storage.BaseCollection) and child.tag == "VCALENDAR":
                yield child


class CalendarHomes:
    def __init__(self, storage: radicale_storage.BaseStorage) -> None:
        self.storage = storage

    def calendars(self, login: str) -> list[Any]:
        """The person's calendars, one named "calendar" first (the default)."""
        found = [
            c
            for c in self.storage.discover(f"/{login}/", depth="1")
            if isinstance(c, radicale_storage.BaseCollection) and c.tag == "VCALENDAR"
        ]
        return sorted(
            found, key=lambda c: (c.path.rstrip("/").rsplit("/", 1)[-1] != "calendar", c.path)
        )

    def find_copy(self, login: str, uid: str) -> tuple[Any, str, Calendar | None]:
        """(calendar, href, parsed copy) of the event `uid` in any of the person's calendars."""
        for col in self.calendars(login):
            if col.has_uid(uid):
                for item in col.get_all():
                    if item.uid == uid:
                        return col, item.href, ical.parse(item.serialize())
        return None, href_for(uid), None

    def default_calendar(self, login: str) -> Any:
        calendars = self.calendars(login)
        if calendars:
            return calendars[0]
        # Before the first login the principal may not exist yet (RFC 6638 delivery).
        self.storage.create_collection(f"/{login}/")
        self.storage.create_collection(
            f"/{login}/calendar/", props={"tag": "VCALENDAR", "D:displayname": "Calendrier"}
        )
        return self.calendars(login)[0]
