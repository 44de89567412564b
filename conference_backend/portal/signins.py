"""Portal sign-ins known server-side: a cookie replayed after signing out opens nothing.

The encrypted cookie carries a random session id; the database keeps only its
SHA-256 with the login (table portal_sessions). Every signed-in request checks
that row: signing out revokes it; a password change, a disabled or a deleted
account revokes every row of that login, whichever tool made the change
(triggers in visio_core/db.py: the CLI, the LDAP sync, a reset link).
"""

from __future__ import annotations

import hashlib
import secrets

from visio_core.db import Database

SEEN_EVERY = 60.0  # last_seen is written at most once a minute per session, not per page


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogateescape")).hexdigest()


def start(db: Database, login: str, now: float, max_age: float) -> str:
    """A new session for `login`; returns its id (for the cookie only)."""
    session_id = secrets.token_urlsafe(32)
    with db.transaction() as conn:
        # Expired sessions are of no use to anyone: dropped as new ones start.
        conn.execute("DELETE FROM portal_sessions WHERE created_at < ?", (now - max_age,))
        conn.execute(
            "INSERT INTO portal_sessions (id_hash, login, created_at, last_seen)"
            " VALUES (?, ?, ?, ?)",
            (_digest(session_id), login, now, now),
        )
    return session_id


def alive(db: Database, session_id: str, login: str, now: float, max_age: float) -> bool:
    """Whether this session of `login` was started here, is fresh and was not ended."""
    digest = _digest(session_id)
    with db.reading() as conn:
        row = conn.execute(
            "SELECT login, created_at, last_seen, revoked FROM portal_sessions WHERE id_hash = ?",
            (digest,),
        ).fetchone()
    if row is None or row["login"] != login or row["revoked"]:
        return False
    if row["created_at"] < now - max_age:
        return False
    if now - row["last_seen"] > SEEN_EVERY:
        with db.transaction() as conn:
            conn.execute(
                "UPDATE portal_sessions SET last_seen = ? WHERE id_hash = ?", (now, digest)
            )
    return True


def end(db: Database, session_id: str) -> None:
    with db.transaction() as conn:
        conn.execute(
            "UPDATE portal_sessions SET revoked = 1 WHERE id_hash = ?", (_digest(session_id),)
        )

