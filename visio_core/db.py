"""The product's database: SQLite by default, PostgreSQL when VISIO_DATABASE_URL says so.

One code path for both: every store writes SQL in the subset the two share
(`?` placeholders, `ON CONFLICT … DO UPDATE/NOTHING`, `RETURNING`, `"end"`
quoted, timestamps passed by the application), and `Conn` hands it to the
driver, turning `?` into psycopg's `%s`. Only the schema scripts
(schema_sqlite.py, schema_postgresql.py) and a claim's row-locking clause
(`Conn.skip_locked`) differ.

SQLite: one file under $VISIO_DATA_DIR; Radicale (threads) and the backend
(asyncio) open it from different processes, WAL mode lets readers run while the
plugin writes, and opening it upgrades its schema (`make run` needs nothing).

PostgreSQL: several machines share it. Every write transaction takes one
advisory lock first, so writers are serialised exactly as SQLite's
BEGIN IMMEDIATE serialises them (every read-then-write in the stores keeps its
meaning); the mail workers' claims skip it and lock rows instead (SKIP LOCKED).
Its schema is upgraded by `visio db upgrade`, never by a serving process: a node
finding the schema behind refuses to start and says so.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import re
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.pq import TransactionStatus

from visio_core.schema_postgresql import POSTGRESQL
from visio_core.schema_sqlite import SQLITE

# Kept for callers and tests that read the SQLite versions under their old name.
SCHEMA = SQLITE
LATEST = len(SQLITE)
assert len(POSTGRESQL) == LATEST, "every schema version is written for both databases"

Dialect = Literal["sqlite", "postgresql"]
# Rows: sqlite3.Row, or `_PgRow` below; both index by position and by column name.
Row = Any
IntegrityError: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)
OperationalError: tuple[type[Exception], ...] = (sqlite3.OperationalError, psycopg.OperationalError)
_STAMP = "%Y-%m-%dT%H:%M:%SZ"
_MIGRATE_LOCK = 0x76697369  # "visi": one `visio db upgrade` at a time per database


class DatabaseError(RuntimeError):
    """The database cannot be used as it is; the message says what to do."""


def now_stamp() -> str:
    """UTC now as the schema's TEXT timestamps write it (what strftime defaults gave)."""
    return dt.datetime.now(dt.UTC).strftime(_STAMP)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class _PgRow(tuple[Any, ...]):
    """A tuple that also answers row["column"], as sqlite3.Row does."""

    _index: dict[str, int] = {}  # noqa: RUF012 - set per column list by _row_class

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


@lru_cache(maxsize=512)
def _row_class(names: tuple[str, ...]) -> type[_PgRow]:
    return type("Row", (_PgRow,), {"_index": {n: i for i, n in enumerate(names)}})


def _pg_rows(cursor: Any) -> Any:
    if cursor.description is None:
        return tuple
    return _row_class(tuple(c.name for c in cursor.description))


@lru_cache(maxsize=2048)
def _pg_sql(sql: str) -> str:
    """`?` -> `%s` and `%` -> `%%`, outside quoted literals."""
    parts = sql.split("'")
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("%", "%%").replace("?", "%s")
    return "'".join(parts)


class Conn:
    """The connection a store is handed: same calls whichever the database."""

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect: Dialect = dialect

    @property
    def skip_locked(self) -> str:
        """What a claiming SELECT ends with: rows another worker is claiming are skipped.

        SQLite has no row locks: its writers are serialised, so a claim is atomic anyway.
        """
        return " FOR UPDATE SKIP LOCKED" if self.dialect == "postgresql" else ""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if self.dialect == "sqlite":
            cur: Cursor = self.raw.execute(sql, params)
            return cur
        pg_cur: Cursor = self.raw.execute(_pg_sql(sql), tuple(params))
        return pg_cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        """Run `sql` once per row; returns how many rows were changed in all."""
        rows = list(rows)
        if not rows:
            return 0
        if self.dialect == "sqlite":
            return int(self.raw.executemany(sql, rows).rowcount)
        with self.raw.cursor() as cur:
            cur.executemany(_pg_sql(sql), rows)
            return int(cur.rowcount)

    def tuples(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Plain tuples: what hundreds of rows are cheapest as."""
        return [tuple(r) for r in self.execute(sql, params).fetchall()]

    def insert_id(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run an INSERT into a table with an `id` key; the new row's id."""
        (row,) = self.execute(sql + " RETURNING id", params).fetchall()
        return int(row[0])

    @property
    def in_transaction(self) -> bool:
        if self.dialect == "sqlite":
            return bool(self.raw.in_transaction)
        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def parse_target(target: Path | str) -> tuple[Dialect, Path | None, str]:
    """(dialect, SQLite file or None, URL) of a path or a database URL."""
    if isinstance(target, Path):
        return "sqlite", target, f"sqlite:///{target}"
    scheme = target.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgresql", None, target
    if scheme == "sqlite" and target.startswith("sqlite:///"):
        return "sqlite", Path(target.removeprefix("sqlite://")), target
    raise DatabaseError(
        "VISIO_DATABASE_URL must be postgresql://USER:PASSWORD@HOST:PORT/NAME or"
        f" sqlite:///PATH (got {redact(target)!r})"
    )


class Database:
    """One connection guarded by a lock: writes are short and serialised (see above)."""

    def __init__(self, target: Path | str, *, upgrade: bool | None = None) -> None:
        """Open `target` (a SQLite file or a database URL).

        `upgrade`: True, bring the schema to this program's version first; False,
        leave it as it is (`visio db`); None, upgrade SQLite and only check
        PostgreSQL (`visio db upgrade` upgrades it).
        """
        self.dialect, self.path, self.url = parse_target(target)
        self._lock = threading.RLock()
        self._depth = 0
        self._write_key = 0
        if self.dialect == "sqlite":
            assert self.path is not None
            self._conn = Conn(self._open_sqlite(self.path), "sqlite")
            if upgrade is not False:
                self.upgrade()
        else:
            self._conn = Conn(self._open_postgresql(), "postgresql")
            if upgrade:
                self.upgrade()
            elif upgrade is None:
                self._check_version()

    # connections ----------------------------------------------------------
    @staticmethod
    def _open_sqlite(path: Path) -> sqlite3.Connection:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _open_postgresql(self) -> psycopg.Connection[Any]:
        try:
            raw: psycopg.Connection[Any] = psycopg.connect(
                self.url, autocommit=True, row_factory=_pg_rows, connect_timeout=30
            )
        except psycopg.OperationalError as e:
            raise DatabaseError(f"cannot connect to {redact(self.url)}: {e}") from e
        # One writers' lock per schema: test stacks share a server, one schema each.
        (schema,) = raw.execute("SELECT current_schema()").fetchone() or ("",)
        self._write_key = zlib.crc32(f"visio-writes:{schema}".encode())
        return raw

    def _live(self) -> Conn:
        """The connection, reopened if the server dropped it (a restart, a failover)."""
        if self.dialect == "postgresql" and self._depth == 0:
            raw = self._conn.raw
            if raw.closed or raw.broken:
                self._conn = Conn(self._open_postgresql(), "postgresql")
        return self._conn

    # schema ---------------------------------------------------------------
    def version(self) -> int:
        """The schema version the database is at."""
        with self._lock:
            conn = self._live()
            if self.dialect == "sqlite":
                (number,) = conn.execute("PRAGMA user_version").fetchone()
                return int(number)
            found = conn.execute("SELECT to_regclass('visio_schema') IS NOT NULL").fetchone()
            if not found[0]:
                return 0
            row = conn.execute("SELECT max(version) FROM visio_schema").fetchone()
            return int(row[0] or 0)

    def upgrade(self) -> tuple[int, int]:
        """Apply the missing schema versions, each in its own transaction; (before, after)."""
        with self._lock:
            if self.dialect == "sqlite":
                assert self.path is not None
                # Two processes may start at once: migrate under an exclusive file lock.
                with open(self.path.with_suffix(".migrate.lock"), "w") as lock_file:
                    fcntl.flock(lock_file, fcntl.LOCK_EX)
                    return self._upgrade_sqlite()
            raw = self._live().raw
            raw.execute("SELECT pg_advisory_lock(%s)", (_MIGRATE_LOCK,))
            try:
                return self._upgrade_postgresql()
            finally:
                raw.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATE_LOCK,))

    def _upgrade_sqlite(self) -> tuple[int, int]:
        raw: sqlite3.Connection = self._conn.raw
        before = self.version()
        for number, script in enumerate(SQLITE[before:], start=before + 1):
            with raw:
                raw.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
        return before, max(before, LATEST)

    def _upgrade_postgresql(self) -> tuple[int, int]:
        raw = self._conn.raw
        before = self.version()
        if before > LATEST:
            raise DatabaseError(self._newer(before))
        for number, script in enumerate(POSTGRESQL[before:], start=before + 1):
            with raw.transaction():
                raw.execute("CREATE TABLE IF NOT EXISTS visio_schema (version INTEGER NOT NULL)")
                raw.execute(script)
                raw.execute("INSERT INTO visio_schema (version) VALUES (%s)", (number,))
        return before, LATEST

    def _newer(self, version: int) -> str:
        return (
            f"{redact(self.url)} has schema version {version}, newer than this program's"
            f" {LATEST}: run the newer program"
        )

    def _check_version(self) -> None:
        version = self.version()
        if version > LATEST:
            raise DatabaseError(self._newer(version))
        if version < LATEST:
            raise DatabaseError(
                f"{redact(self.url)} has schema version {version}, this program needs"
                f" {LATEST}: run `visio db upgrade` once (from any machine), then start again"
            )

    # transactions ---------------------------------------------------------
    @contextmanager
    def transaction(self, *, serial: bool = True) -> Iterator[Conn]:
        """BEGIN … COMMIT, rolled back on any exception.

        Re-entrant: a storage call nested in another (delivering an invitation into
        an attendee's calendar during the organizer's PUT) joins the outer
        transaction through a savepoint, so everything commits or nothing does.

        `serial`: on PostgreSQL, wait for the writers' lock (SQLite's BEGIN
        IMMEDIATE always does); only statements that lock their own rows pass False.
        """
        with self._lock:
            conn = self._live()
            if conn.in_transaction:
                self._depth += 1
                name = f"nested_{self._depth}"
                conn.execute(f"SAVEPOINT {name}")
                try:
                    yield conn
                except BaseException:
                    conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    conn.execute(f"RELEASE SAVEPOINT {name}")
                    raise
                finally:
                    self._depth -= 1
                conn.execute(f"RELEASE SAVEPOINT {name}")
                return
            if self.dialect == "sqlite":
                conn.execute("BEGIN IMMEDIATE")
            else:
                conn.execute("BEGIN")
                if serial:
                    conn.execute("SELECT pg_advisory_xact_lock(?)", (self._write_key,))
            try:
                yield conn
            except BaseException:
                self._rollback(conn)
                raise
            conn.execute("COMMIT")

    @staticmethod
    def _rollback(conn: Conn) -> None:
        if conn.dialect == "postgresql" and (conn.raw.closed or conn.raw.broken):
            return  # the server went away mid-transaction: nothing to roll back
        conn.execute("ROLLBACK")

    def in_transaction(self) -> bool:
        """Whether this thread is inside `transaction()` (another thread's waits for the lock)."""
        with self._lock:
            return self._conn.in_transaction

    @contextmanager
    def reading(self) -> Iterator[Conn]:
        with self._lock:
            yield self._live()

    def close(self) -> None:
        with self._lock:
            self._conn.raw.close()


_NAME_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def schema_url(url: str, schema: str) -> str:
    """`url` with every table in PostgreSQL schema `schema` (tests: one schema per stack)."""
    if not _NAME_RE.match(schema):
        raise ValueError(f"bad schema name {schema!r}")
    glue = "&" if "?" in url else "?"
    return f"{url}{glue}options=-csearch_path%3D{schema}"
