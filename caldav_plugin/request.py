"""What the storage needs to know about the request it runs in.

Radicale hands storage vobject items, already stripped of data vobject cannot
keep; the application stashes the raw body here so the storage can work from
the client's own text. A ContextVar is per thread under Radicale's threaded server.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property

from icalendar import Calendar

from visio_core import ical


@dataclass
class PutRequest:
    body: str
    rewritten: bool = False
    _by_uid: dict[str, Calendar] | None = field(default=None, repr=False)

    @cached_property
    def calendar(self) -> Calendar | None:
        """The body parsed once by icalendar; None when icalendar cannot read it."""
        try:
            return ical.parse(self.body)
        except ValueError:
            return None

    def split(self) -> None:
        """Parse and split now: the application calls this before Radicale's write lock."""
        if self._by_uid is None:
            self._by_uid = ical.split_by_uid(self.calendar) if self.calendar is not None else {}

    def calendar_for(self, uid: str) -> Calendar | None:
        """The client's own components for `uid` (handed out once: callers change them)."""
        self.split()
        assert self._by_uid is not None
        return self._by_uid.pop(uid, None)


current_put: ContextVar[PutRequest | None] = ContextVar("current_put", default=None)
