"""What the sync remembers between runs, in the product's database.

- `ldap_accounts`: for each directory account, its DN (to recognise an account
  that stopped matching the filter), whether it may book, and whether the sync
  itself disabled it (so it re-enables only those, never an account an
  administrator disabled by hand).
- `ldap_state`: the high-water modifyTimestamp for incremental runs and when
  the last full pass finished.

These tables belong to the sync alone; they are part of the shared schema
versions since version 9 (visio_core/schema_*.py), so PostgreSQL gets them too.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from visio_core.db import Database


@dataclass(frozen=True)
class Known:
    login: str
    dn: str
    may_book: bool
    left_directory: bool


class SyncStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def known(self) -> dict[str, Known]:
        """Every directory account seen so far, by login."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT login, dn, may_book, left_directory FROM ldap_accounts"
            ).fetchall()
        return {
            r["login"]: Known(r["login"], r["dn"], bool(r["may_book"]), bool(r["left_directory"]))
            for r in rows
        }

    def record(self, entries: Iterable[tuple[str, str]]) -> None:
        """(login, dn) of accounts present in the directory now."""
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO ldap_accounts (login, dn) VALUES (?, ?)"
                " ON CONFLICT (login) DO UPDATE SET dn = excluded.dn, left_directory = 0",
                list(entries),
            )

    def mark_left(self, logins: Iterable[str]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE ldap_accounts SET left_directory = 1 WHERE login = ?",
                [(login,) for login in logins],
            )

    def set_may_book(self, changes: Iterable[tuple[str, bool]]) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "UPDATE ldap_accounts SET may_book = ? WHERE login = ?",
                [(int(allowed), login) for login, allowed in changes],
            )

    def get(self, key: str) -> str:
        with self.db.reading() as conn:
            row = conn.execute("SELECT value FROM ldap_state WHERE key = ?", (key,)).fetchone()
        return str(row["value"]) if row else ""

    def put(self, **values: str) -> None:
        with self.db.transaction() as conn:
            conn.executemany(
                "INSERT INTO ldap_state (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def seconds_since_full(self) -> float | None:
        value = self.get("last_full_at")
        return time.time() - float(value) if value else None


def may_book(db: Database, login: str) -> bool:
    """Whether this account may book meetings: directory accounts outside the booking
    group may not; every other account may."""
    with db.reading() as conn:
        row = conn.execute(
            "SELECT may_book FROM ldap_accounts WHERE login = ?", (login,)
        ).fetchone()
    return bool(row["may_book"]) if row else True
