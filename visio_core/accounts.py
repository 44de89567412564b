"""Accounts: the local store (embedded default) that LDAP sync also writes into.

Passwords are hashed with Argon2id (argon2-cffi). Logins are lower-case ASCII
names safe as a CalDAV path segment.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from visio_core.db import Database

_LOGIN_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL_RE = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$|^[^@\s<>\"]+@localhost$")
_HASHER = PasswordHasher()
# Verifying against this keeps unknown logins as slow as wrong passwords.
_DUMMY_HASH = _HASHER.hash("no such account")


class AccountError(ValueError):
    """Bad account data; the message is meant for the person at the terminal."""


@dataclass(frozen=True)
class Account:
    login: str
    email: str
    name: str
    entity: str
    source: str
    disabled: bool

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Account:
        return cls(
            login=row["login"],
            email=row["email"],
            name=row["name"],
            entity=row["entity"],
            source=row["source"],
            disabled=bool(row["disabled"]),
        )


def check_login(login: str) -> str:
    if not _LOGIN_RE.fullmatch(login):
        raise AccountError(
            f"invalid login {login!r}: use 1 to 64 lower-case letters, digits, '.', '-' or '_',"
            " starting with a letter or digit"
        )
    return login


def check_email(email: str) -> str:
    email = email.strip()
    if not _EMAIL_RE.match(email) or any(c in email for c in "\r\n\0,;"):
        raise AccountError(f"invalid e-mail address {email!r}")
    return email


def _clean_text(value: str, what: str) -> str:
    if any(c in value for c in "\r\n\0"):
        raise AccountError(f"{what} cannot contain line breaks")
    return value.strip()


_SELECT = "SELECT login, email, name, entity, source, disabled FROM accounts"


class Accounts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, login: str, email: str, name: str, password: str, entity: str = "") -> Account:
        login = check_login(login)
        email = check_email(email)
        name = _clean_text(name, "name") or login
        entity = _clean_text(entity, "entity")
        if len(password) < 8:
            raise AccountError("the password must have at least 8 characters")
        password_hash = _HASHER.hash(password)
        with self.db.transaction() as conn:
            if conn.execute("SELECT 1 FROM accounts WHERE login = ?", (login,)).fetchone():
                raise AccountError(f"an account {login!r} already exists")
            owner = conn.execute(
                "SELECT login FROM account_addresses WHERE address = ?", (email.lower(),)
            ).fetchone()
            if owner:
                raise AccountError(f"{email} is already the address of {owner['login']!r}")
            conn.execute(
                "INSERT INTO accounts (login, email, name, entity, password_hash, source)"
                " VALUES (?, ?, ?, ?, ?, 'local')",
                (login, email, name, entity, password_hash),
            )
            conn.execute(
                "INSERT INTO account_addresses (address, login) VALUES (?, ?)",
                (email.lower(), login),
            )
        return Account(login, email, name, entity, "local", False)

    def get(self, login: str) -> Account | None:
        with self.db.reading() as conn:
            row = conn.execute(_SELECT + " WHERE login = ?", (login,)).fetchone()
        return Account.from_row(row) if row else None

    def by_address(self, address: str) -> Account | None:
        with self.db.reading() as conn:
            row = conn.execute(
                _SELECT + " WHERE login = (SELECT login FROM account_addresses WHERE address = ?)",  # noqa: S608 - constant SQL
                (address.strip().lower(),),
            ).fetchone()
        return Account.from_row(row) if row else None

    def list(self, disabled: bool | None = None) -> list[Account]:
        sql, args = _SELECT, tuple[int, ...]()
        if disabled is not None:
            sql, args = _SELECT + " WHERE disabled = ?", (int(disabled),)
        with self.db.reading() as conn:
            rows = conn.execute(sql + " ORDER BY login", args).fetchall()
        return [Account.from_row(r) for r in rows]

    def set_disabled(self, login: str, disabled: bool = True) -> None:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE accounts SET disabled = ?,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ','now') WHERE login = ?",
                (int(disabled), login),
            )
            if cur.rowcount == 0:
                raise AccountError(f"no account {login!r}")

    def verify(self, login: str, password: str) -> Account | None:
        """The enabled local account these credentials open, else None (same cost either way)."""
        with self.db.reading() as conn:
            row = conn.execute(
                "SELECT password_hash, disabled FROM accounts WHERE login = ?", (login,)
            ).fetchone()
        stored = row["password_hash"] if row and row["password_hash"] else _DUMMY_HASH
        try:
            ok = bool(password) and _HASHER.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if not ok or row is None or row["disabled"] or stored is _DUMMY_HASH:
            return None
        return self.get(login)
