"""Password reset requests: written by the portal, mailed later by the mail worker.

The portal writes one row per request whatever the login (known, unknown,
directory account): the request does the same work in every case and never
talks to SMTP, so neither its page nor its timing tells who has an account.
At most one row per login per window (and none while one is still pending), so
a flood of requests sends one mail. The worker decides what each row becomes:
a mail for an enabled local account with an address, nothing for the others.
Mail workers on several nodes `claim` a request before mailing it (as the
outbox's messages, see visio_core/outbox.py), so one mail goes out per request.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from visio_core.db import Database

# Retries after a temporary SMTP failure (seconds); a reset link is wanted now or not at all.
BACKOFF = (5, 30, 120, 600)
KEEP_SECONDS = 24 * 3600  # rows are evidence for `visio` admins a day, then pruned
CLAIM_SECONDS = 120.0  # one request, claimed to done: above the SMTP timeouts


@dataclass(frozen=True)
class Request:
    id: int
    login: str
    language: str
    attempts: int


def ask(db: Database, login: str, language: str, window_seconds: int, now: float) -> bool:
    """Queue a reset mail for `login` unless one was asked within the window; True if queued."""
    with db.transaction() as conn:
        cur = conn.execute(
            "INSERT INTO reset_requests (login, language, requested_at)"
            " SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM reset_requests"
            " WHERE login = ? AND (requested_at > ? OR state = 'pending'))",
            (login, language, now, login, now - window_seconds),
        )
        return cur.rowcount == 1


def due(db: Database, limit: int = 50, now: float | None = None) -> list[Request]:
    """What is due and claimed by no worker (a look: `claim` takes)."""
    now = time.time() if now is None else now
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT id, login, language, attempts FROM reset_requests"
            " WHERE state = 'pending' AND next_attempt_at <= ? AND claimed_until <= ?"
            " ORDER BY id LIMIT ?",
            (now, now, limit),
        ).fetchall()
    return [Request(r["id"], r["login"], r["language"], r["attempts"]) for r in rows]


_CLAIMABLE = (
    "SELECT id, login, language, attempts FROM reset_requests"
    " WHERE state = 'pending' AND next_attempt_at <= ? AND claimed_until <= ?"
    " ORDER BY id LIMIT 1"
)


def claim(db: Database, now: float | None = None) -> Request | None:
    """Take the next due request (no other worker's claim returns it for CLAIM_SECONDS)."""
    now = time.time() if now is None else now
    with db.transaction(serial=False) as conn:
        row = conn.execute(_CLAIMABLE + conn.skip_locked, (now, now)).fetchone()
        if row is None:
            return None
        conn.execute(
            "UPDATE reset_requests SET claimed_until = ? WHERE id = ?",
            (now + CLAIM_SECONDS, row["id"]),
        )
    return Request(row["id"], row["login"], row["language"], row["attempts"])


def done(db: Database, request_id: int, state: str) -> None:
    """`state`: "sent" (a mail went out) or "skipped" (no local account to mail)."""
    with db.transaction() as conn:
        conn.execute(
            "UPDATE reset_requests SET state = ?, attempts = attempts + 1, last_error = '',"
            " claimed_until = 0 WHERE id = ?",
            (state, request_id),
        )


def failed(db: Database, request: Request, error: str, permanent: bool) -> bool:
    """Record a failure; True when the request will not be retried."""
    give_up = permanent or request.attempts + 1 >= len(BACKOFF)
    delay = BACKOFF[min(request.attempts, len(BACKOFF) - 1)]
    with db.transaction() as conn:
        conn.execute(
            "UPDATE reset_requests SET state = ?, attempts = attempts + 1, last_error = ?,"
            " next_attempt_at = ?, claimed_until = 0 WHERE id = ?",
            ("failed" if give_up else "pending", error[:500], time.time() + delay, request.id),
        )
    return give_up


def prune(db: Database, now: float | None = None) -> None:
    now = time.time() if now is None else now
    with db.transaction() as conn:
        conn.execute(
            "DELETE FROM reset_requests WHERE requested_at < ? AND state != 'pending'",
            (now - KEEP_SECONDS,),
        )
