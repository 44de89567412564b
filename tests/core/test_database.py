"""The database itself: schema versions on both kinds, `visio db`, connections."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from ldap_sync.store import SyncStore
from tests.support.database import fresh_url
from tests.support.stack import ROOT
from visio_core import resets
from visio_core.accounts import Accounts
from visio_core.db import LATEST, Database, DatabaseError, _pg_sql
from visio_core.outbox import Outbox
from visio_core.schema_sqlite import SQLITE

# What ldap_sync created by itself before version 9 made its tables shared.
OLD_LDAP_TABLES = """
CREATE TABLE IF NOT EXISTS ldap_accounts (
    login TEXT PRIMARY KEY REFERENCES accounts(login) ON DELETE CASCADE,
    dn TEXT NOT NULL,
    may_book INTEGER NOT NULL DEFAULT 1,
    left_directory INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ldap_accounts_dn ON ldap_accounts (dn);
CREATE TABLE IF NOT EXISTS ldap_state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def old_file(path: Path, version: int, ldap: bool) -> None:
    """A database as the release at `version` left it, with some rows."""
    raw = sqlite3.connect(path)
    for number, script in enumerate(SQLITE[:version], start=1):
        raw.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")
    raw.executescript(
        "INSERT INTO accounts (login, email, name) VALUES ('alice', 'alice@x.org', 'Alice');"
        "INSERT INTO account_addresses VALUES ('alice@x.org', 'alice');"
        "INSERT INTO itip_changes (owner, uid, organizer, calendar)"
        " VALUES ('alice', 'm1', 'alice@x.org', 'BEGIN:VCALENDAR');"
        "INSERT INTO outbox (change_id, uid, sequence, method, recipient)"
        " VALUES (1, 'm1', 0, 'REQUEST', 'bob@x.org');"
        "INSERT INTO reset_requests (login, language, requested_at) VALUES ('alice', 'fr', 1);"
    )
    if ldap:
        raw.executescript(OLD_LDAP_TABLES)
        raw.execute("INSERT INTO ldap_state VALUES ('last_full_at', '12345')")
        raw.commit()
    raw.close()


@pytest.mark.parametrize("ldap", [True, False], ids=["ldap-tables", "no-ldap-tables"])
def test_a_version_8_file_upgrades_in_place(tmp_path: Path, ldap: bool) -> None:
    path = tmp_path / "visio.sqlite3"
    old_file(path, 8, ldap)
    db = Database(path)
    try:
        assert db.version() == LATEST
        account = Accounts(db).get("alice")
        assert account is not None and account.email == "alice@x.org"
        assert [p.recipient for p in Outbox(db).due()] == ["bob@x.org"]
        assert [r.login for r in resets.due(db)] == ["alice"]
        assert SyncStore(db).get("last_full_at") == ("12345" if ldap else "")
        SyncStore(db).put(last_full_at="678")
        assert SyncStore(db).get("last_full_at") == "678"
    finally:
        db.close()


def test_a_version_1_file_upgrades_through_every_version(tmp_path: Path) -> None:
    path = tmp_path / "visio.sqlite3"
    raw = sqlite3.connect(path)
    raw.executescript(f"BEGIN;\n{SQLITE[0]}\nPRAGMA user_version = 1;\nCOMMIT;")
    raw.execute("INSERT INTO accounts (login, email, name) VALUES ('old', 'old@x.org', 'Old')")
    raw.commit()
    raw.close()
    db = Database(path)
    try:
        assert db.version() == LATEST
        assert [a.login for a in Accounts(db).list()] == ["old"]
    finally:
        db.close()


def visio(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}
    return subprocess.run(
        [sys.executable, "-m", "visio_cli.main", *args],
        env={**clean, "VISIO_CONFIG": str(ROOT / "radicale.conf"), **env},
        cwd=ROOT,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


def test_postgresql_is_upgraded_by_visio_db_upgrade_only(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_url(postgres_url, "t_upgrade_" + os.urandom(4).hex())
    env = {"VISIO_DATA_DIR": str(tmp_path), "VISIO_DATABASE_URL": url}
    with pytest.raises(DatabaseError, match="run `visio db upgrade`"):
        Database(url)
    served = visio(env, "users", "list")
    assert served.returncode == 2 and "visio db upgrade" in served.stderr
    before = visio(env, "db", "version")
    assert before.returncode == 1 and "schema version 0" in before.stdout
    done = visio(env, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"from version 0 to {LATEST}" in done.stdout
    again = visio(env, "db", "upgrade")
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert visio(env, "db", "version").returncode == 0
    db = Database(url)
    assert db.version() == LATEST
    db.close()


def test_sqlite_needs_no_upgrade_command_but_takes_it(tmp_path: Path) -> None:
    old_file(tmp_path / "visio.sqlite3", 8, ldap=True)
    done = visio({"VISIO_DATA_DIR": str(tmp_path)}, "db", "upgrade")
    assert done.returncode == 0, done.stderr
    assert f"from version 8 to {LATEST}" in done.stdout
    assert "up to date" in visio({"VISIO_DATA_DIR": str(tmp_path)}, "db", "version").stdout


def test_a_bad_database_url_is_refused(tmp_path: Path) -> None:
    bad = visio(
        {"VISIO_DATA_DIR": str(tmp_path), "VISIO_DATABASE_URL": "mysql://x"}, "db", "version"
    )
    assert bad.returncode == 2 and "VISIO_DATABASE_URL must be" in bad.stderr


def test_placeholders_become_psycopgs() -> None:
    assert _pg_sql("SELECT ? WHERE a = '?' AND b LIKE '%x' AND c % 2 = ?") == (
        "SELECT %s WHERE a = '?' AND b LIKE '%x' AND c %% 2 = %s"
    )


def test_a_dropped_connection_is_reopened(postgres_url: str, tmp_path: Path) -> None:
    url = fresh_url(postgres_url, "t_drop_" + os.urandom(4).hex())
    db = Database(url, upgrade=True)
    accounts = Accounts(db)
    accounts.add("alice", "alice@x.org", "Alice", "password-1234")
    pid = db._conn.raw.info.backend_pid
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg.OperationalError):
        accounts.get("alice")  # the statement in flight fails…
    assert accounts.get("alice") is not None  # …the next one reconnects
    db.close()


def test_postgresql_writers_wait_for_each_other_as_on_sqlite(
    postgres_url: str, tmp_path: Path
) -> None:
    url = fresh_url(postgres_url, "t_serial_" + os.urandom(4).hex())
    first, second = Database(url, upgrade=True), Database(url)
    entered, order = threading.Event(), []

    def other() -> None:
        with second.transaction():
            order.append("second")

    with first.transaction():
        thread = threading.Thread(target=other)
        thread.start()
        entered.wait(0.5)  # let the other writer reach the lock
        time.sleep(0.5)
        order.append("first")
    thread.join(30)
    assert order == ["first", "second"]
    first.close()
    second.close()
