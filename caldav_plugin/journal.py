"""Storage writes in flight, repaired from the files when a server died during one.

Radicale writes an event's file before the registry transaction that goes with it
commits (the row describes what was stored), and one PUT may write several files
(copies delivered to attendees). A server killed between a file and the commit
leaves a stored event whose room the registry does not know, or a row whose file
is gone. So each outermost storage write first commits a mark of where it writes;
its own transaction deletes the mark with everything else. A mark still there was
cut short: `repair` re-reads those places from the files. It runs when a storage
is loaded (so at every start, before any request) and at once when a write fails.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from radicale import storage as radicale_storage

from caldav_plugin import services
from caldav_plugin.homes import every_calendar
from caldav_plugin.rebuild import parsed, room_of
from visio_core.agenda import Agenda
from visio_core.db import Conn, Database
from visio_core.registry import Registry

log = logging.getLogger("visio.journal")

WHOLE = ""  # the href of a mark that covers a whole collection and what is below it
Place = tuple[str, str, str]  # (collection path, href or WHOLE, UID or "")


@dataclass
class Write:
    conn: Conn
    files_touched: bool = False

    def touching_files(self) -> None:
        """From here on a failure may leave files the registry has not seen."""
        self.files_touched = True


@contextmanager
def journaled(storage: Any, db: Database, places: Iterable[Place]) -> Iterator[Write]:
    """The registry transaction of a storage write (call with the storage's write lock).

    A write nested in another one (a delivery during the organizer's PUT) joins the
    outer transaction, whose mark covers it (`repair` looks for its UID everywhere).
    """
    outermost = not db.in_transaction()
    marks = [(path.strip("/"), href, uid) for path, href, uid in places]
    delete = "DELETE FROM pending_writes WHERE calendar_path = ? AND href = ? AND uid = ?"
    if outermost:
        with db.transaction() as conn:
            conn.executemany(
                "INSERT INTO pending_writes VALUES (?, ?, ?) ON CONFLICT DO NOTHING", marks
            )
    write: Write | None = None
    try:
        with db.transaction() as conn:
            write = Write(conn)
            yield write
            if outermost:
                conn.executemany(delete, marks)
    except BaseException:
        if outermost:
            try:
                if write is not None and write.files_touched:
                    repair(storage, db)  # the files may have changed: rows follow them
                else:  # refused before any file changed: nothing to repair
                    with db.transaction() as conn:
                        conn.executemany(delete, marks)
            except Exception:
                log.exception("repair after a failed write failed; the next start retries")
        raise


def repair(storage: Any, db: Database) -> int:
    """Make registry rows and agenda follow the files where writes were cut short.

    Call with the storage's write lock held. Returns how many marks were repaired.
    """
    with db.reading() as conn:
        marks = [tuple(r) for r in conn.execute("SELECT * FROM pending_writes").fetchall()]
    if not marks:
        return 0
    svc = services.get()
    calendars = list(every_calendar(storage))
    uids = {uid for _, _, uid in marks if uid}
    with db.transaction() as conn:
        for path, href, _ in marks:
            uids |= _repair_rooms(conn, svc, calendars, path, href)
        # The agenda of every calendar involved is read again by the start-up pass
        # (until then the portal reads those calendars through CalDAV).
        touched = {path for path, _, _ in marks}
        touched |= {c.path for c in calendars if uids & {i.uid for i in _items(c)}}
        for path in touched:
            Agenda.forget_under(conn, path)
        conn.execute("DELETE FROM pending_writes")
    log.warning("repaired %d write(s) cut short: %s", len(marks), sorted(touched))
    return len(marks)


def _repair_rooms(
    conn: Conn,
    svc: services.Services,
    calendars: list[radicale_storage.BaseCollection],
    path: str,
    href: str,
) -> set[str]:
    """The registry rows of one place as the files say; returns the UIDs found there."""
    if href == WHOLE:
        Registry.retire_under(conn, path)
        inside = [c for c in calendars if c.path == path or c.path.startswith(path + "/")]
        items = [(c.path, item) for c in inside for item in _items(c)]
    else:
        conn.execute("DELETE FROM rooms WHERE calendar_path = ? AND href = ?", (path, href))
        found = [c for c in calendars if c.path == path]
        items = [(path, item) for c in found for item in _items(c, href)]
    uids: set[str] = set()
    for calendar_path, item in items:
        cal = parsed(item)
        room = room_of(svc, calendar_path, item.href or "", cal) if cal is not None else None
        if item.uid:
            uids.add(item.uid)
        if room is None:
            continue
        conn.execute("DELETE FROM rooms WHERE owner = ? AND uid = ?", (room.owner, room.uid))
        taken = conn.execute(
            "SELECT 1 FROM rooms WHERE room_id = ? OR room_number = ? OR token_hash = ?",
            (room.room_id, room.room_number, room.token_hash),
        ).fetchone()
        if taken:
            log.warning("%s/%s: room %s already taken", calendar_path, item.href, room.room_id)
            continue
        Registry.upsert(conn, room)
    return uids


def _items(calendar: Any, href: str | None = None) -> list[Any]:
    try:
        if href is None:
            return list(calendar.get_all())
        return [item for _, item in calendar.get_multi([href]) if item is not None]
    except Exception:  # an unreadable file has no room; Radicale reports it when read
        log.warning("cannot read %s/%s", calendar.path, href or "*")
        return []
