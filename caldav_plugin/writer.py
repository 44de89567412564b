"""What happens when an event is written or removed: room, scheduling, stored text.

One `EventWriter` per storage call. `prepare` turns the client's item into the
item to store and returns the steps to run once it is stored (queue messages,
deliver copies). Everything runs inside the caller's registry transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import radicale.item as radicale_item
from icalendar import Calendar
from radicale import storage as radicale_storage

from caldav_plugin import request, services
from caldav_plugin.rooms import RoomDecision, RoomRewriter, owner_of
from caldav_plugin.scheduling import Role, Scheduler, role_of
from visio_core import agenda, conference, ical
from visio_core.agenda import Agenda
from visio_core.db import Conn
from visio_core.outbox import Outbox

log = logging.getLogger("visio.writer")

AfterWrite = Callable[[], None]
SERIES = agenda.SeriesMemo()  # process-wide: the copies one PUT delivers share it


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Draft:
    """A PUT's stored form, and what it was computed from (checked again under the lock)."""

    old_etag: str | None
    decision: RoomDecision
    failed: dict[str, str]
    schedule: bool
    cal: Calendar
    old_cal: Calendar | None
    role: Role
    text: str
    index: agenda.Index | None  # its occurrences, for the portal's views


class EventWriter:
    def __init__(self, storage: radicale_storage.BaseStorage) -> None:
        svc = services.get()
        self.settings = svc.settings
        self.accounts = svc.accounts
        self.db = svc.db
        self.rooms = RoomRewriter(svc.settings, svc.registry, svc.key)
        self.scheduler = Scheduler(svc.settings, svc.accounts, svc.key, storage)

    def _role(self, owner: str, cal: Calendar) -> Role:
        return role_of(cal, self.accounts.get(owner), self.accounts)

    def draft(
        self,
        collection_path: str,
        cal: Calendar,
        old: radicale_item.Item | None,
        schedule: bool = True,
        as_sent: str | None = None,
    ) -> Draft:
        """The stored form of `cal` (changed in place), from registry reads only.

        The application drafts a PUT before Radicale's write lock (serialising a
        5,000-attendee event takes a while); `prepare` uses the draft when nothing it
        read has changed since, and drafts again under the lock otherwise.
        """
        old_cal = _parse_or_none(old)
        role = self._role(owner_of(collection_path), cal)
        if role.kind != "attendee":
            with self.db.reading() as conn:
                decision = self.rooms.apply(conn, collection_path, cal)
        else:
            # An attendee's copy keeps its links, but a room id in it is not a claim
            # on the room (whoever wrote it): the registry's row is the organizer's.
            decision = RoomDecision(None, None, touched=conference.forget_ownership(cal))
        failed: dict[str, str] = {}
        if role.kind == "organizer" and schedule:
            failed = Outbox(self.db).failed_for(ical.uid_of(cal))
            self.scheduler.prepare_organizer(old_cal, cal, role, failed)
        etag = old.etag if old is not None else None
        # An event neither the room nor scheduling changed is stored as it was sent.
        untouched = not decision.touched and not (role.kind == "organizer" and schedule)
        text = as_sent if as_sent is not None and untouched else ical.serialize(cal)
        index = SERIES.index_of(cal, text, dt.datetime.now(dt.UTC))
        return Draft(etag, decision, failed, schedule, cal, old_cal, role, text, index)

    def _holds(
        self,
        conn: Conn,
        collection_path: str,
        draft: Draft,
        old: radicale_item.Item | None,
        schedule: bool,
    ) -> bool:
        uid = ical.uid_of(draft.cal)
        if draft.old_etag != (old.etag if old is not None else None) or draft.schedule != schedule:
            return False
        if (
            schedule
            and draft.role.kind == "organizer"
            and Outbox(self.db).failed_for(uid) != (draft.failed)
        ):
            return False
        return self.rooms.still_holds(conn, collection_path, uid, draft.decision)

    def prepare(
        self,
        conn: Conn,
        collection_path: str,
        href: str,
        item: radicale_item.Item,
        old: radicale_item.Item | None,
        schedule: bool = True,
    ) -> tuple[radicale_item.Item, AfterWrite]:
        if item.component_name not in ical.OBJECT_TYPES and item.name != "VCALENDAR":
            return item, _nothing  # address book entries are not ours
        put = request.current_put.get()
        draft = put.take_draft(item.uid) if put is not None else None
        if draft is None or not self._holds(conn, collection_path, draft, old, schedule):
            cal = None
            if put is not None:
                cal = put.calendar_for(item.uid) if draft is None else None
                if cal is None:  # the stale draft changed the parsed copy: parse again
                    cal = ical.split_by_uid(ical.parse(put.body)).get(item.uid)
            as_sent = put.as_sent if put is not None else None
            draft = self.draft(
                collection_path, cal or ical.parse(item.serialize()), old, schedule, as_sent
            )
        cal, old_cal, role, text = draft.cal, draft.old_cal, draft.role, draft.text
        owner = owner_of(collection_path)
        spec = draft.decision.spec
        self.rooms.record(conn, collection_path, href, cal, text, draft.decision)
        Agenda.put(conn, collection_path, href, draft.index)
        # The rewrite never touches DTSTART, DTEND, DURATION or recurrence, so
        # Radicale's own analysis of the item (UID, time range for its filters)
        # still holds: reuse it rather than parse the text with vobject again.
        item.prepare()
        new_item = radicale_item.Item(
            collection_path=collection_path.strip("/"),
            text=text,
            uid=item.uid,
            name=item.name,
            component_name=item.component_name,
            time_range=item.time_range,
        )
        if put is not None and text.replace("\r\n", "\n") != put.body.replace("\r\n", "\n"):
            put.rewritten = True

        def after() -> None:
            if not schedule:
                return
            if role.kind == "organizer":
                self.scheduler.after_organizer_write(conn, owner, old_cal, cal, text, role, spec)
            elif role.kind == "attendee":
                self.scheduler.after_attendee_write(conn, old_cal, cal, role)

        return new_item, after

    def removed(self, conn: Conn, collection_path: str, old: Any) -> None:
        """An event was deleted: cancel it (organizer) or decline it (attendee)."""
        cal = _parse_or_none(old)
        if cal is None:
            return
        owner = owner_of(collection_path)
        role = self._role(owner, cal)
        if role.kind == "organizer":
            self.scheduler.on_organizer_delete(conn, owner, cal, role)
        elif role.kind == "attendee":
            self.scheduler.after_attendee_write(conn, cal, None, role, deleted=True)


def _parse_or_none(item: Any) -> Calendar | None:
    if item is None:
        return None
    try:
        return ical.parse(item.serialize())
    except Exception:  # an unreadable old copy must not block saving a good new one
        log.warning("cannot read the stored copy of %s", getattr(item, "href", "?"))
        return None
