"""The product's SQLite database: one file under $VISIO_DATA_DIR, schema by version.

Radicale (threads) and the backend (asyncio) open it from different processes;
WAL mode lets readers run while the plugin writes.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA: list[str] = [
    # version 1
    """
    CREATE TABLE accounts (
        login TEXT PRIMARY KEY,
        email TEXT NOT NULL,
        name TEXT NOT NULL,
        entity TEXT NOT NULL DEFAULT '',
        password_hash TEXT,
        source TEXT NOT NULL DEFAULT 'local',
        disabled INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE account_addresses (
        address TEXT PRIMARY KEY,          -- lower-cased e-mail address
        login TEXT NOT NULL REFERENCES accounts(login) ON DELETE CASCADE
    );
    CREATE TABLE rooms (
        room_id TEXT PRIMARY KEY,
        uid TEXT NOT NULL,
        owner TEXT NOT NULL,
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('video', 'audio')),
        options TEXT NOT NULL DEFAULT '{}',
        token_hash TEXT NOT NULL UNIQUE,
        room_number TEXT NOT NULL UNIQUE,
        summary TEXT NOT NULL DEFAULT '',
        event TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE UNIQUE INDEX rooms_owner_uid ON rooms (owner, uid);
    CREATE INDEX rooms_calendar ON rooms (calendar_path);
    """,
    # version 2: scheduling (invitations issue)
    """
    CREATE TABLE itip_changes (
        id INTEGER PRIMARY KEY,
        owner TEXT NOT NULL,
        uid TEXT NOT NULL,
        organizer TEXT NOT NULL,
        organizer_name TEXT NOT NULL DEFAULT '',
        room_id TEXT,
        calendar TEXT NOT NULL,          -- the organizer's copy, join link replaced
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        change_id INTEGER NOT NULL REFERENCES itip_changes(id),
        uid TEXT NOT NULL,
        recurrence_id TEXT NOT NULL DEFAULT '',
        sequence INTEGER NOT NULL,
        method TEXT NOT NULL,
        recipient TEXT NOT NULL,
        is_update INTEGER NOT NULL DEFAULT 0,
        state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        sent_at TEXT,
        UNIQUE (uid, recurrence_id, sequence, method, recipient)
    );
    CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
    CREATE TABLE attendee_links (
        token_hash TEXT PRIMARY KEY,
        room_id TEXT NOT NULL REFERENCES rooms(room_id) ON DELETE CASCADE,
        address TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        UNIQUE (room_id, address)
    );
    CREATE TABLE rsvp_links (
        token_hash TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        uid TEXT NOT NULL,
        address TEXT NOT NULL,
        UNIQUE (owner, uid, address)
    );
    """,
    # version 3: every save of an organizer's copy asks the outbox about its UID
    """
    CREATE INDEX outbox_uid ON outbox (uid, recipient);
    """,
    # version 4: RSVP tokens are signed and carry their subject; no table needed
    """
    DROP TABLE rsvp_links;
    """,
    # version 5: the agenda, an index of every calendar's occurrences kept by the storage
    # plugin in the same transaction as the event, so the portal's views read it at once
    """
    CREATE TABLE agenda_calendars (
        calendar_path TEXT PRIMARY KEY,
        indexed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now'))
    );
    CREATE TABLE agenda_items (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        recurring INTEGER NOT NULL,
        covered_from INTEGER NOT NULL,  -- series: expanded over this window (epoch seconds)
        covered_to INTEGER NOT NULL,
        PRIMARY KEY (calendar_path, href)
    );
    -- One row per occurrence, everything a view shows: no join when reading a month.
    CREATE TABLE agenda (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,
        uid TEXT NOT NULL,
        organizer TEXT NOT NULL,
        recurring INTEGER NOT NULL,
        start INTEGER NOT NULL,  -- epoch seconds; floating times and dates as if in UTC
        end INTEGER NOT NULL,
        timing INTEGER NOT NULL,  -- 0 UTC, 1 floating, 2 date
        rid INTEGER NOT NULL,
        rid_timing INTEGER NOT NULL,
        long INTEGER NOT NULL,
        title TEXT NOT NULL,
        kind TEXT NOT NULL
    );
    CREATE INDEX agenda_when ON agenda (calendar_path, start);
    CREATE INDEX agenda_long ON agenda (calendar_path, long, start);
    CREATE INDEX agenda_item ON agenda (calendar_path, href);
    """,
    # version 6: meeting recordings (one per room occurrence, one file per segment)
    """
    CREATE TABLE recordings (
        id INTEGER PRIMARY KEY,
        room_id TEXT NOT NULL,             -- no foreign key: a recording outlives its room
        occurrence TEXT NOT NULL,
        owner TEXT NOT NULL,               -- login of the organizer, the only one served
        summary TEXT NOT NULL DEFAULT '',
        state TEXT NOT NULL DEFAULT 'recording' CHECK (state IN ('recording', 'done')),
        notified INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        ended_at TEXT,
        UNIQUE (room_id, occurrence)
    );
    CREATE TABLE recording_segments (
        id INTEGER PRIMARY KEY,
        recording_id INTEGER NOT NULL REFERENCES recordings(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL DEFAULT 0,
        started_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ','now')),
        ended_at TEXT
    );
    CREATE INDEX recording_segments_of ON recording_segments (recording_id);
    """,
    # version 7: storage writes in flight (caldav_plugin/journal.py), so a server killed
    # between an event's file and its registry row is repaired at the next start
    """
    CREATE TABLE pending_writes (
        calendar_path TEXT NOT NULL,
        href TEXT NOT NULL,                -- '': the whole collection and below
        uid TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (calendar_path, href, uid)
    );
    """,
    # version 8: portal sessions known server-side (sign-out ends one; a password change,
    # a disabled or deleted account ends all, whichever tool made the change: triggers),
    # and password reset requests sent by the mail worker, never inside the request
    """
    CREATE TABLE portal_sessions (
        id_hash TEXT PRIMARY KEY,          -- SHA-256 of the id held in the session cookie
        login TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_seen REAL NOT NULL,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX portal_sessions_login ON portal_sessions (login);
    CREATE TRIGGER portal_sessions_disabled AFTER UPDATE OF disabled ON accounts
        WHEN NEW.disabled != 0 AND OLD.disabled = 0
        BEGIN UPDATE portal_sessions SET revoked = 1 WHERE login = NEW.login; END;
    CREATE TRIGGER portal_sessions_password AFTER UPDATE OF password_hash ON accounts
        WHEN NEW.password_hash IS NOT OLD.password_hash
        BEGIN UPDATE portal_sessions SET revoked = 1 WHERE login = NEW.login; END;
    CREATE TRIGGER portal_sessions_deleted AFTER DELETE ON accounts
        BEGIN DELETE FROM portal_sessions WHERE login = OLD.login; END;
    CREATE TABLE reset_requests (
        id INTEGER PRIMARY KEY,
        login TEXT NOT NULL,               -- as typed: a row whether or not the account exists
        language TEXT NOT NULL,
        requested_at REAL NOT NULL,
        state TEXT NOT NULL DEFAULT 'pending'
            CHECK (state IN ('pending', 'sent', 'skipped', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL DEFAULT 0,
        last_error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX reset_requests_login ON reset_requests (login, requested_at);
    CREATE INDEX reset_requests_due ON reset_requests (state, next_attempt_at);
    """,
]


def _migrate(conn: sqlite3.Connection) -> None:
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    for number, script in enumerate(SCHEMA[version:], start=version + 1):
        with conn:
            conn.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


class Database:
    """One connection guarded by a lock: writes are short and already serialised by Radicale."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._conn = sqlite3.connect(
            path, timeout=30, isolation_level=None, check_same_thread=False
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._lock = threading.RLock()
        self._depth = 0
        # Two processes may start at once: migrate under an exclusive file lock.
        with open(path.with_suffix(".migrate.lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            _migrate(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception.

        Re-entrant: a storage call nested in another (delivering an invitation into
        an attendee's calendar during the organizer's PUT) joins the outer
        transaction through a savepoint, so everything commits or nothing does.
        """
        with self._lock:
            if self._conn.in_transaction:
                self._depth += 1
                name = f"nested_{self._depth}"
                self._conn.execute(f"SAVEPOINT {name}")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute(f"ROLLBACK TO {name}")
                    self._conn.execute(f"RELEASE {name}")
                    raise
                finally:
                    self._depth -= 1
                self._conn.execute(f"RELEASE {name}")
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def in_transaction(self) -> bool:
        """Whether this thread is inside `transaction()` (another thread's waits for the lock)."""
        with self._lock:
            return self._conn.in_transaction

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()
