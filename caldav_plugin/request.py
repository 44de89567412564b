"""What the storage needs to know about the request it runs in.

Radicale hands storage vobject items, already stripped of data vobject cannot
keep; the application stashes the raw body here so the storage can work from
the client's own text. A ContextVar is per thread under Radicale's threaded server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from icalendar import Calendar

from visio_core import ical


@dataclass
class PutRequest:
    body: str
    rewritten: bool = False
    draft: Any = None  # writer.Draft of the single event this PUT holds, made before the lock
    as_sent: str | None = None  # that event's text as stored when nothing changes it
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

    def single_uid(self) -> str | None:
        """The UID when the body holds one event (a plain PUT), else None (an import)."""
        self.split()
        assert self._by_uid is not None
        return next(iter(self._by_uid)) if len(self._by_uid) == 1 else None

    def take_draft(self, uid: str) -> Any:
        draft, self.draft = self.draft, None
        return draft if draft is not None and ical.uid_of(draft.cal) == uid else None

    def calendar_for(self, uid: str) -> Calendar | None:
        """The client's own components for `uid` (handed out once: callers change them)."""
        self.split()
        assert self._by_uid is not None
        return self._by_uid.pop(uid, None)


current_put: ContextVar[PutRequest | None] = ContextVar("current_put", default=None)


@contextmanager
def outside_put() -> Iterator[None]:
    """For writes the server makes itself during a PUT (a copy delivered to an
    attendee): they must not be taken for the client's body."""
    token = current_put.set(None)
    try:
        yield
    finally:
        current_put.reset(token)
