"""The room registry: one row per live room, a projection of the calendars.

`rooms rebuild` can recreate every row from the stored events, so nothing here
is the source of truth for what, when or who.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from visio_core.categories import RoomKind
from visio_core.db import Conn, Database, Row, now_stamp


@dataclass(frozen=True)
class Room:
    room_id: str
    uid: str
    owner: str
    calendar_path: str
    href: str
    kind: RoomKind
    token_hash: str
    room_number: str
    summary: str
    event: str  # the event as stored, with the join token blanked out
    options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_row(cls, row: Row) -> Room:
        return cls(
            room_id=row["room_id"],
            uid=row["uid"],
            owner=row["owner"],
            calendar_path=row["calendar_path"],
            href=row["href"],
            kind=RoomKind(row["kind"]),
            token_hash=row["token_hash"],
            room_number=row["room_number"],
            summary=row["summary"],
            event=row["event"],
            options=json.loads(row["options"] or "{}"),
        )


_COLUMNS = (
    "room_id, uid, owner, calendar_path, href, kind, options, token_hash, room_number,"
    " summary, event"
)


def _values(room: Room) -> tuple[Any, ...]:
    return (
        room.room_id,
        room.uid,
        room.owner,
        room.calendar_path,
        room.href,
        room.kind.value,
        json.dumps(room.options, sort_keys=True),
        room.token_hash,
        room.room_number,
        room.summary,
        room.event,
    )


class Registry:
    def __init__(self, db: Database) -> None:
        self.db = db

    # reads ---------------------------------------------------------------
    def _one(self, sql: str, args: tuple[Any, ...]) -> Room | None:
        with self.db.reading() as conn:
            # `sql` is one of this module's constant conditions; values are always bound.
            row = conn.execute(f"SELECT {_COLUMNS} FROM rooms WHERE {sql}", args).fetchone()  # noqa: S608
        return Room.from_row(row) if row else None

    def by_owner_uid(self, owner: str, uid: str) -> Room | None:
        return self._one("owner = ? AND uid = ?", (owner, uid))

    def by_token_hash(self, token_hash: str) -> Room | None:
        return self._one("token_hash = ?", (token_hash,))

    def by_number(self, number: str) -> Room | None:
        return self._one("room_number = ?", (number,))

    def by_id(self, room_id: str) -> Room | None:
        return self._one("room_id = ?", (room_id,))

    def all(self) -> list[Room]:
        with self.db.reading() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM rooms ORDER BY owner, summary"  # noqa: S608
            ).fetchall()
        return [Room.from_row(r) for r in rows]

    def number_taken(self, conn: Conn, number: str) -> bool:
        return (
            conn.execute("SELECT 1 FROM rooms WHERE room_number = ?", (number,)).fetchone()
            is not None
        )

    # writes (inside a transaction the caller holds) ------------------------
    @staticmethod
    def upsert(conn: Conn, room: Room) -> None:
        conn.execute(
            f"INSERT INTO rooms ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
            "ON CONFLICT(room_id) DO UPDATE SET uid=excluded.uid, owner=excluded.owner,"
            " calendar_path=excluded.calendar_path, href=excluded.href, kind=excluded.kind,"
            " options=excluded.options, token_hash=excluded.token_hash,"
            " room_number=excluded.room_number, summary=excluded.summary, event=excluded.event,"
            " updated_at=?",
            (*_values(room), now_stamp()),
        )

    @staticmethod
    def retire(conn: Conn, owner: str, uid: str) -> bool:
        cur = conn.execute("DELETE FROM rooms WHERE owner = ? AND uid = ?", (owner, uid))
        return cur.rowcount > 0

    @staticmethod
    def retire_under(conn: Conn, path: str, keep_uids: Iterable[str] = ()) -> int:
        """Retire rooms stored in collection `path` or below it, except `keep_uids`."""
        prefix = path.strip("/")
        keep = set(keep_uids)
        # substr, not LIKE: collection paths are case-sensitive.
        rows = conn.execute(
            "SELECT room_id, uid, calendar_path FROM rooms WHERE calendar_path = ? "
            "OR substr(calendar_path, 1, ?) = ?",
            (prefix, len(prefix) + 1, prefix + "/"),
        ).fetchall()
        doomed = [
            r["room_id"] for r in rows if not (r["calendar_path"] == prefix and r["uid"] in keep)
        ]
        conn.executemany("DELETE FROM rooms WHERE room_id = ?", [(d,) for d in doomed])
        return len(doomed)

    @staticmethod
    def relocate(conn: Conn, owner: str, uid: str, calendar_path: str, href: str) -> None:
        conn.execute(
            "UPDATE rooms SET calendar_path = ?, href = ?,"
            " updated_at = ? WHERE owner = ? AND uid = ?",
            (calendar_path.strip("/"), href, now_stamp(), owner, uid),
        )

    def replace_all(self, rooms: Iterable[Room]) -> int:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM rooms")
            count = 0
            for room in rooms:
                self.upsert(conn, room)
                count += 1
        return count
