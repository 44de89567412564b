"""Session-wide fixtures: a PostgreSQL server for the tests that run on both databases."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import database
from tests.support.postgres import Postgres


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """The run's PostgreSQL server (`make test-postgres`), else a throwaway one."""
    if database.server_url():
        yield database.server_url()
        return
    # Not under pytest's tmp: PostgreSQL runs as its own user, who must reach the folder.
    root = Path(tempfile.mkdtemp(prefix="visio-pg-"))
    server = Postgres(root).start()
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[database.Database]:
    """A fresh database of each kind: store tests run on both."""
    if request.param == "sqlite":
        db = database.Database(tmp_path / "db.sqlite3")
    else:
        db = database.open_db(tmp_path / "db.sqlite3", request.getfixturevalue("postgres_url"))
    yield db
    db.close()
