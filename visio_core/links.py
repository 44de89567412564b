"""Personal join links: derived tokens, stored only as hashes.

Rows follow the organizer's event: an attendee removed from it loses their row
(and so their link) in the same transaction that stores the change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from visio_core import tokens
from visio_core.db import Conn, Database


@dataclass(frozen=True)
class Guest:
    room_id: str
    address: str
    name: str


def sync_attendee_links(conn: Conn, key: bytes, room_id: str, people: Mapping[str, str]) -> None:
    """Make the room's personal links exactly `people` (address -> display name)."""
    rows = conn.execute(
        "SELECT address, name FROM attendee_links WHERE room_id = ?", (room_id,)
    ).fetchall()
    have = {r["address"]: r["name"] for r in rows}
    gone = set(have) - set(people)
    conn.executemany(
        "DELETE FROM attendee_links WHERE room_id = ? AND address = ?",
        [(room_id, a) for a in gone],
    )
    # Only what changed is written: an update of a big meeting rewrites nothing.
    conn.executemany(
        "INSERT INTO attendee_links (token_hash, room_id, address, name) VALUES (?, ?, ?, ?)"
        " ON CONFLICT(room_id, address) DO UPDATE SET name = excluded.name",
        [
            (tokens.hash_token(tokens.attendee_token(key, room_id, a)), room_id, a, n)
            for a, n in people.items()
            if have.get(a) != n
        ],
    )


class Links:
    def __init__(self, db: Database) -> None:
        self.db = db

    def guest(self, token_hash: str) -> Guest | None:
        with self.db.reading() as conn:
            row = conn.execute(
                "SELECT room_id, address, name FROM attendee_links WHERE token_hash = ?",
                (token_hash,),
            ).fetchone()
        return Guest(row["room_id"], row["address"], row["name"]) if row else None
