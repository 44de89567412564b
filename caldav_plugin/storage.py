"""Radicale multifilesystem storage that turns Visio/Audio events into rooms.

Configured as `[storage] type = caldav_plugin.storage`. Every path that writes
or removes an event comes through here: PUT (`upload`), whole-calendar PUT
(`create_collection`), DELETE (`delete`) and MOVE (`move`). Each one updates the
room registry in the same call, inside one SQLite transaction, journaled so that
a server killed between the files and the commit is repaired at its next start.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from typing import Any

import radicale.item as radicale_item
from radicale import pathutils
from radicale.storage import multifilesystem

from caldav_plugin import services
from caldav_plugin.agenda_index import index_item
from caldav_plugin.journal import WHOLE, journaled, repair
from caldav_plugin.rooms import owner_of
from caldav_plugin.writer import EventWriter
from visio_core.agenda import Agenda
from visio_core.db import Conn
from visio_core.registry import Registry

log = logging.getLogger("visio.storage")


class Collection(multifilesystem.Collection):
    def upload(
        self, href: str, item: radicale_item.Item
    ) -> tuple[radicale_item.Item, radicale_item.Item | None]:
        if not pathutils.is_safe_filesystem_path_component(href):
            raise pathutils.UnsafePathError(href)
        writer = EventWriter(self._storage)
        with journaled(self._storage, writer.db, [(self.path, href, item.uid or "")]) as write:
            conn = write.conn
            old = self._get(href, verify_href=False)
            stored, after = writer.prepare(conn, self.path, href, item, old)
            write.touching_files()
            result = super().upload(href, stored)
            after()
            return result

    def delete(self, href: str | None = None) -> None:
        writer = EventWriter(self._storage)
        old = (
            self._get(href, verify_href=True)
            if href is not None and pathutils.is_safe_filesystem_path_component(href)
            else None
        )
        mark = (self.path, WHOLE if href is None else href, old.uid if old is not None else "")
        with journaled(self._storage, writer.db, [mark]) as write:
            conn = write.conn
            write.touching_files()  # deliveries of cancellations write before the deletion
            if href is None:
                Agenda.forget_under(conn, self.path)
                retired = Registry.retire_under(conn, self.path)
                if retired:
                    log.info("%d room(s) retired with collection %s", retired, self.path)
            else:
                Agenda.remove(conn, self.path, href)
                if (
                    old is not None
                    and old.uid
                    and not _room_elsewhere(conn, self.path, href, old.uid)
                ):
                    writer.removed(conn, self.path, old)
                    if Registry.retire(conn, owner_of(self.path), old.uid):
                        log.info("room of %s/%s retired (event deleted)", self.path, old.uid)
            super().delete(href)


def _room_elsewhere(conn: Conn, path: str, href: str, uid: str) -> bool:
    """Whether the owner's room for `uid` lives in another copy of the event (the same
    UID in a second calendar, written last): deleting this copy leaves it, and its
    attendees, alone."""
    row = conn.execute(
        "SELECT calendar_path, href FROM rooms WHERE owner = ? AND uid = ?",
        (owner_of(path), uid),
    ).fetchone()
    return row is not None and (row["calendar_path"], row["href"]) != (path.strip("/"), href)


class Storage(multifilesystem.Storage):
    _collection_class = Collection

    def __init__(self, configuration: Any) -> None:
        super().__init__(configuration)
        # Before the first request: a write the last run was killed in is made whole.
        with self.acquire_lock("w"):
            repair(self, services.get().db)

    def move(self, item: radicale_item.Item, to_collection: Any, to_href: str) -> None:
        db = services.get().db
        src = item.collection.path if item.collection is not None else ""
        marks = [(src, item.href or "", item.uid), (to_collection.path, to_href, item.uid)]
        with journaled(self, db, marks) as write:
            conn = write.conn
            write.touching_files()
            super().move(item, to_collection, to_href)
            old_owner, new_owner = owner_of(src), owner_of(to_collection.path)
            Agenda.remove(conn, src, item.href or "")
            Agenda.put(conn, to_collection.path, to_href, index_item(item, dt.datetime.now(dt.UTC)))
            if old_owner == new_owner:
                Registry.relocate(conn, old_owner, item.uid, to_collection.path, to_href)
            elif Registry.retire(conn, old_owner, item.uid):
                # Another principal's calendar: the room stays with its organizer's copy.
                log.info("room of %s/%s retired (moved to %s)", src, item.uid, to_collection.path)

    def create_collection(
        self,
        href: str,
        items: Iterable[radicale_item.Item] | None = None,
        props: Any = None,
    ) -> Any:
        if not props or props.get("tag") != "VCALENDAR":
            return super().create_collection(href, items, props)
        path = pathutils.strip_path(href)
        if items is None:  # MKCALENDAR: an empty calendar, indexed from the start
            with services.get().db.transaction() as conn:
                created = super().create_collection(href, items, props)
                Agenda.forget_under(conn, path)
                Agenda.indexed(conn, path)
                return created
        writer = EventWriter(self)
        with journaled(self, writer.db, [(path, WHOLE, "")]) as write:
            conn = write.conn
            # An import is not a round of invitations: rooms yes, scheduling no.
            stored = [
                writer.prepare(conn, path, item.uid + ".ics", item, None, schedule=False)[0]
                for item in items
            ]
            # Events that the import no longer holds lose their rooms.
            Registry.retire_under(conn, path, keep_uids={i.uid for i in stored})
            write.touching_files()
            created = super().create_collection(href, stored, props)
            # Indexed under the names Radicale chose (an unsafe UID gets another).
            Agenda.forget_under(conn, path)
            Agenda.indexed(conn, path)
            collection = created[0] if isinstance(created, tuple) else created  # 3.9: a tuple
            for item in collection.get_all():
                Agenda.put(conn, path, item.href or "", index_item(item, dt.datetime.now(dt.UTC)))
            return created
