"""The database a test uses: SQLite by default, PostgreSQL when the run asks for it.

`make test-postgres` sets VISIO_TEST_DATABASE_URL (a throwaway server, see
tests/support/postgres.py); every stack and store test then keeps its tables in
a schema of its own on that server, named after its folder, so a test that
reopens "the same file" reopens the same schema.
"""

from __future__ import annotations

import hashlib
import os
from functools import cache
from pathlib import Path

import psycopg

from visio_core.db import Database, schema_url

ENV_URL = "VISIO_TEST_DATABASE_URL"


def server_url() -> str:
    """The PostgreSQL server of this run, or "" (SQLite)."""
    return os.environ.get(ENV_URL, "")


@cache
def fresh_url(base_url: str, schema: str) -> str:
    """A URL whose tables live in schema `schema` (made if missing) of `base_url`'s server."""
    with psycopg.connect(base_url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return schema_url(base_url, schema)


def schema_for(path: Path) -> str:
    return "t_" + hashlib.sha1(str(path.absolute()).encode()).hexdigest()[:20]


def target(path: Path, base_url: str | None = None) -> Path | str:
    """What to open for the database "at" `path`: the file, or its schema on the server."""
    base = server_url() if base_url is None else base_url
    if not base:
        return path
    return fresh_url(base, schema_for(path))


def open_db(path: Path, base_url: str | None = None) -> Database:
    """The test database "at" `path`, at this program's schema version."""
    return Database(target(path, base_url), upgrade=True)
