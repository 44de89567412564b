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
        # Two processes may start at once: migrate under an exclusive file lock.
        with open(path.with_suffix(".migrate.lock"), "w") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            _migrate(self._conn)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._conn

    def close(self) -> None:
        with self._lock:
            self._conn.close()
