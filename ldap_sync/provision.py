"""Principals and default calendars for directory accounts, before their first login.

Radicale creates a principal collection at a user's first login, and no
calendar. An invitation for someone who has never logged in needs a calendar
to land in, so the sync creates both, through Radicale's storage API with the
product's configured storage (the same class and folder as the server, and
the same storage lock, so a concurrent request never sees half a collection).
The Radicale configuration is handed in by the caller (visio_cli), which is
the one place that knows how the CalDAV server is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from radicale import config as radicale_config
from radicale import storage as radicale_storage

CALENDAR = "calendar"  # path segment of the default calendar: /LOGIN/calendar/
_DISPLAY_NAME = {"fr": "Calendrier", "en": "Calendar"}  # as scheduling names it
BATCH = 50  # people per hold of the storage lock (~0.25 s with fsync): the server stays responsive


def calendar_props(language: str) -> dict[str, str]:
    return {
        "tag": "VCALENDAR",
        "D:displayname": _DISPLAY_NAME.get(language, _DISPLAY_NAME["en"]),
        "C:supported-calendar-component-set": "VEVENT,VTODO",
    }


class Provisioner:
    def __init__(self, configuration: radicale_config.Configuration, language: str) -> None:
        self.storage: Any = radicale_storage.load(configuration)
        self.props = calendar_props(language)

    def _has_principal(self, login: str) -> bool:
        return next(iter(self.storage.discover(f"/{login}/")), None) is not None

    def _has_calendar(self, login: str) -> bool:
        return any(
            getattr(c, "tag", None) == "VCALENDAR"
            for c in self.storage.discover(f"/{login}/", depth="1")
        )

    def missing(self, logins: Iterable[str]) -> list[str]:
        """The logins that have no principal collection yet (cheap: one stat each)."""
        with self.storage.acquire_lock("r"):
            return [login for login in logins if not self._has_principal(login)]

    def provision(self, logins: Sequence[str]) -> int:
        """Give each login a default calendar unless it already has a calendar.

        Someone who logged in before their first sync has a principal (Radicale
        made it) and maybe calendars of their own: those are left alone.
        """
        created = 0
        for start in range(0, len(logins), BATCH):
            with self.storage.acquire_lock("w", "", actor="visio ldap-sync"):
                for login in logins[start : start + BATCH]:
                    if self._has_principal(login) and self._has_calendar(login):
                        continue
                    # The calendar's parent folder is the principal, exactly as
                    # Radicale makes it at a first login (a plain collection).
                    self.storage.create_collection(f"/{login}/{CALENDAR}/", props=self.props)
                    created += 1
        return created
