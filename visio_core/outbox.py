"""The durable outbox: iTIP messages written with the event, sent later by the mail worker.

A change (the organizer's calendar, join link replaced by a placeholder) is
stored once; each message to each recipient is a row, unique per
(UID, RECURRENCE-ID, SEQUENCE, METHOD, recipient), so a retried PUT or a worker
restarted after a crash never sends the same message twice.

Several mail workers (one per node) share the outbox: a worker `claim`s a batch
(PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED, so two claims never return the same
row; SQLite: its writers are serialised anyway), then `hold`s each message just
before handing it to SMTP. A hold succeeds only while the message is still this
worker's, and keeps it so for HOLD_SECONDS, longer than one SMTP exchange. A
worker's name is its node's (host and data folder), one mail worker per node:
restarted after a crash, it `release`s what its previous run had claimed at
once; a node that never comes back leaves its batch to the others after
CLAIM_SECONDS. A claim that runs out only moves work: a hold never succeeds for
a message another worker has claimed since. So each message is sent once, except
in the window a single worker always had: between the server's 250 and the
commit of `mark_sent`.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from visio_core.db import Conn, Database, now_stamp
from visio_core.itip import Outgoing

# Retry delays after a temporary failure (seconds); after the last, the message fails.
BACKOFF = (2, 5, 15, 60, 300, 900, 3600, 3600, 3600)
CLAIM_SECONDS = 120.0  # a claimed batch is the worker's this long (then anyone's)
HOLD_SECONDS = 120.0  # one message, from `hold` to `mark_sent`: above the SMTP timeouts


@dataclass(frozen=True)
class Pending:
    id: int
    change_id: int
    uid: str
    recurrence_id: str | None
    sequence: int
    method: str
    recipient: str
    is_update: bool
    attempts: int
    owner: str
    organizer: str
    organizer_name: str
    room_id: str | None
    calendar: str


@dataclass(frozen=True)
class Row:
    id: int
    uid: str
    method: str
    recipient: str
    state: str
    attempts: int
    last_error: str
    created_at: str


def add_change(
    conn: Conn,
    *,
    owner: str,
    uid: str,
    organizer: str,
    organizer_name: str,
    room_id: str | None,
    calendar: str,
    messages: Iterable[Outgoing],
    is_update: bool,
) -> int:
    """Queue `messages` for a change; returns how many rows were new."""
    msgs = [m for m in messages if m.recipients]
    if not msgs:
        return 0
    change_id = conn.insert_id(
        "INSERT INTO itip_changes (owner, uid, organizer, organizer_name, room_id, calendar)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (owner, uid, organizer, organizer_name, room_id, calendar),
    )
    return conn.executemany(
        "INSERT INTO outbox (change_id, uid, recurrence_id, sequence, method,"
        " recipient, is_update) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [
            (change_id, uid, m.recurrence_id or "", m.sequence, m.method, r, int(is_update))
            for m in msgs
            for r in m.recipients
        ],
    )


_PENDING = (
    "SELECT o.id, o.change_id, o.uid, o.recurrence_id, o.sequence, o.method,"
    " o.recipient, o.is_update, o.attempts, c.owner, c.organizer,"
    " c.organizer_name, c.room_id, c.calendar"
    " FROM outbox o JOIN itip_changes c ON c.id = o.change_id"
)


_CLAIMABLE = (
    "SELECT id FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?"
    " AND claimed_until <= ? ORDER BY id LIMIT ?"
)


def _pending(r: Any) -> Pending:
    return Pending(
        id=r["id"],
        change_id=r["change_id"],
        uid=r["uid"],
        recurrence_id=r["recurrence_id"] or None,
        sequence=r["sequence"],
        method=r["method"],
        recipient=r["recipient"],
        is_update=bool(r["is_update"]),
        attempts=r["attempts"],
        owner=r["owner"],
        organizer=r["organizer"],
        organizer_name=r["organizer_name"],
        room_id=r["room_id"],
        calendar=r["calendar"],
    )


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    def due(self, limit: int = 100, now: float | None = None) -> list[Pending]:
        """What is due and claimed by no worker (a look: `claim` takes)."""
        now = time.time() if now is None else now
        with self.db.reading() as conn:
            rows = conn.execute(
                _PENDING + " WHERE o.state = 'pending' AND o.next_attempt_at <= ?"
                " AND o.claimed_until <= ? ORDER BY o.id LIMIT ?",
                (now, now, limit),
            ).fetchall()
        return [_pending(r) for r in rows]

    def claim(self, worker: str, limit: int = 100, now: float | None = None) -> list[Pending]:
        """Take up to `limit` due messages for `worker` (no other claim returns them)."""
        now = time.time() if now is None else now
        # Row locks, not the writers' lock: claims on several nodes run side by side.
        with self.db.transaction(serial=False) as conn:
            ids = [
                r[0]
                for r in conn.execute(_CLAIMABLE + conn.skip_locked, (now, now, limit)).fetchall()
            ]
            if not ids:
                return []
            conn.executemany(
                "UPDATE outbox SET claimed_until = ?, claimed_by = ? WHERE id = ?",
                [(now + CLAIM_SECONDS, worker, i) for i in ids],
            )
            marks = ",".join("?" for _ in ids)
            rows = conn.execute(
                _PENDING + f" WHERE o.id IN ({marks}) ORDER BY o.id",
                ids,
            ).fetchall()
        return [_pending(r) for r in rows]

    def hold(self, msg_id: int, worker: str, now: float | None = None) -> bool:
        """Just before sending: True if the message is still `worker`'s (and now for a while)."""
        now = time.time() if now is None else now
        with self.db.transaction(serial=False) as conn:
            cur = conn.execute(
                "UPDATE outbox SET claimed_until = ? WHERE id = ? AND claimed_by = ?"
                " AND state = 'pending'",
                (now + HOLD_SECONDS, msg_id, worker),
            )
            return cur.rowcount == 1

    def release(self, worker: str) -> int:
        """At a worker's start: what its previous run claimed is anyone's again."""
        with self.db.transaction(serial=False) as conn:
            cur = conn.execute(
                "UPDATE outbox SET claimed_until = 0 WHERE claimed_by = ? AND state = 'pending'",
                (worker,),
            )
            return cur.rowcount

    def mark_sent(self, ids: Iterable[int]) -> None:
        with self.db.transaction(serial=False) as conn:
            conn.executemany(
                "UPDATE outbox SET state = 'sent', attempts = attempts + 1, sent_at = ?,"
                " last_error = '', claimed_until = 0 WHERE id = ?",
                [(now_stamp(), i) for i in ids],
            )

    def mark_failed(self, msg_id: int, attempts: int, error: str, permanent: bool) -> bool:
        """Record a failure; returns True when the message will not be retried."""
        give_up = permanent or attempts >= len(BACKOFF)
        delay = BACKOFF[min(attempts, len(BACKOFF) - 1)]
        with self.db.transaction(serial=False) as conn:
            conn.execute(
                "UPDATE outbox SET state = ?, attempts = ?, last_error = ?,"
                " next_attempt_at = ?, claimed_until = 0 WHERE id = ?",
                (
                    "failed" if give_up else "pending",
                    attempts + 1,
                    error[:500],
                    time.time() + delay,
                    msg_id,
                ),
            )
        return give_up

    def retry_now(self) -> None:
        """Make every pending message due (the SMTP server came back)."""
        with self.db.transaction() as conn:
            conn.execute("UPDATE outbox SET next_attempt_at = 0 WHERE state = 'pending'")

    def listing(self, states: Iterable[str] = ("pending", "failed")) -> list[Row]:
        wanted = tuple(states)
        marks = ",".join("?" for _ in wanted)
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT id, uid, method, recipient, state, attempts, last_error, created_at"  # noqa: S608
                f" FROM outbox WHERE state IN ({marks}) ORDER BY id",
                wanted,
            ).fetchall()
        return [Row(**dict(r)) for r in rows]

    def failed_for(self, uid: str) -> dict[str, str]:
        """Recipients of `uid` whose latest message failed for good, with the error."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT recipient, last_error FROM outbox o WHERE uid = ? AND state = 'failed'"
                " AND id = (SELECT max(id) FROM outbox WHERE uid = o.uid"
                " AND recipient = o.recipient)",
                (uid,),
            ).fetchall()
        return {r["recipient"]: r["last_error"] for r in rows}
