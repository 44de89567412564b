"""Accounts: the local store (embedded default) that LDAP sync also writes into.

Passwords are hashed with Argon2id (argon2-cffi). Logins are lower-case ASCII
names safe as a CalDAV path segment.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from visio_core.db import Conn, Database, Row, now_stamp

log = logging.getLogger("visio.accounts")
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
    def from_row(cls, row: Row) -> Account:
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


@dataclass(frozen=True)
class DirectoryRecord:
    """What the directory says about one person (written by `visio ldap-sync`)."""

    login: str
    email: str
    name: str
    entity: str
    addresses: tuple[str, ...]  # every address of the person, primary included


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

    def by_addresses(self, addresses: Iterable[str]) -> dict[str, Account]:
        """Accounts of many addresses in one query (attendee lists run to thousands)."""
        wanted = sorted({a.strip().lower() for a in addresses})
        found: dict[str, Account] = {}
        with self.db.reading() as conn:
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" for _ in chunk)
                rows = conn.execute(
                    "SELECT ad.address, a.login, a.email, a.name, a.entity, a.source, a.disabled"  # noqa: S608
                    " FROM account_addresses ad JOIN accounts a ON a.login = ad.login"
                    f" WHERE ad.address IN ({marks})",
                    chunk,
                ).fetchall()
                found.update({r["address"]: Account.from_row(r) for r in rows})
        return found

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
                "UPDATE accounts SET disabled = ?, updated_at = ? WHERE login = ?",
                (int(disabled), now_stamp(), login),
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

    def addresses(self, login: str) -> tuple[str, ...]:
        """Every address that resolves to this account (lower-case, sorted)."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT address FROM account_addresses WHERE login = ? ORDER BY address", (login,)
            ).fetchall()
        return tuple(r["address"] for r in rows)

    def upsert_from_directory(self, records: Iterable[DirectoryRecord]) -> dict[str, str]:
        """Add or update directory accounts in one transaction.

        Returns login -> "added", "changed" or "unchanged". The disabled flag is the
        caller's business (the sync knows who left). A local account with the same
        login becomes a directory account: in LDAP mode the directory decides who
        that login is. An address held by another enabled account stays with it;
        one held by a disabled account (someone who left) moves.
        """
        records = list(records)
        outcome: dict[str, str] = {}
        with self.db.transaction() as conn:
            # One scan for the batch's addresses (account_addresses has no index on login).
            logins = {r.login for r in records}
            held: dict[str, set[str]] = {login: set() for login in logins}
            for row in conn.execute("SELECT address, login FROM account_addresses"):
                if row["login"] in logins:
                    held[row["login"]].add(row["address"])
            for record in records:
                outcome[record.login] = _upsert_directory_account(
                    conn, record, held.get(record.login, set())
                )
        return outcome

    def set_disabled_many(self, logins: Iterable[str], disabled: bool = True) -> int:
        """Disable (or enable) these accounts in one transaction; how many changed state."""
        changed = 0
        with self.db.transaction() as conn:
            for login in logins:
                changed += conn.execute(
                    "UPDATE accounts SET disabled = ?, updated_at = ?"
                    " WHERE login = ? AND disabled != ?",
                    (int(disabled), now_stamp(), login, int(disabled)),
                ).rowcount
        return changed


def _upsert_directory_account(conn: Conn, record: DirectoryRecord, held: set[str]) -> str:
    login = check_login(record.login)
    email = check_email(record.email)
    name = _clean_text(record.name, "name") or login
    entity = _clean_text(record.entity, "entity")
    row = conn.execute(
        "SELECT email, name, entity, source FROM accounts WHERE login = ?", (login,)
    ).fetchone()
    if row is None:
        conn.execute(
            "INSERT INTO accounts (login, email, name, entity, source) VALUES (?, ?, ?, ?, 'ldap')",
            (login, email, name, entity),
        )
        result = "added"
    elif (row["email"], row["name"], row["entity"], row["source"]) != (email, name, entity, "ldap"):
        if row["source"] != "ldap":
            log.info("account %s (%s) now comes from the directory", login, row["source"])
        conn.execute(
            "UPDATE accounts SET email = ?, name = ?, entity = ?, source = 'ldap',"
            " updated_at = ? WHERE login = ?",
            (email, name, entity, now_stamp(), login),
        )
        result = "changed"
    else:
        result = "unchanged"
    wanted = list(dict.fromkeys(a.strip().lower() for a in (email, *record.addresses)))
    moved = False
    for address in held.difference(wanted):
        conn.execute("DELETE FROM account_addresses WHERE address = ?", (address,))
        moved = True
    for address in wanted:
        if address in held:
            continue
        owner = conn.execute(
            "SELECT a.login, a.disabled FROM account_addresses d JOIN accounts a USING (login)"
            " WHERE d.address = ?",
            (address,),
        ).fetchone()
        if owner is not None and not owner["disabled"]:
            log.warning(
                "%s: address %s already belongs to %s; kept there", login, address, owner["login"]
            )
            continue
        conn.execute(
            "INSERT INTO account_addresses (address, login) VALUES (?, ?)"
            " ON CONFLICT (address) DO UPDATE SET login = excluded.login",
            (address, login),
        )
        moved = True
    if moved and result == "unchanged":
        result = "changed"
    return result
