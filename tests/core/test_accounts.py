"""Local accounts in the real SQLite database (tmp_path)."""

from __future__ import annotations

import pytest

from tests.support.database import open_db
from visio_core.accounts import Account, AccountError, Accounts, check_email, check_login

PASSWORD = "correct horse battery"


@pytest.fixture
def accounts(database):
    return Accounts(database)


@pytest.fixture
def alice(accounts):
    return accounts.add("alice", "Alice.Martin@Example.org", "Alice Martin", PASSWORD, "DSI")


def test_add_returns_the_account(alice):
    assert alice == Account(
        login="alice",
        email="Alice.Martin@Example.org",
        name="Alice Martin",
        entity="DSI",
        source="local",
        disabled=False,
    )


def test_get_and_list(accounts, alice):
    bob = accounts.add("bob.durand", "bob@example.org", "Bob Durand", PASSWORD)
    assert accounts.get("alice") == alice
    assert accounts.get("bob.durand") == bob
    assert accounts.get("carol") is None
    assert [a.login for a in accounts.list()] == ["alice", "bob.durand"]
    assert bob.entity == ""


def test_name_defaults_to_login_and_text_is_trimmed(accounts):
    acc = accounts.add("carol", "  carol@example.org ", "   ", PASSWORD, "  Compta  ")
    assert acc.name == "carol"
    assert acc.email == "carol@example.org"
    assert acc.entity == "Compta"
    assert accounts.get("carol") == acc


@pytest.mark.parametrize(
    "address",
    ["alice.martin@example.org", "ALICE.MARTIN@EXAMPLE.ORG", " Alice.Martin@example.org "],
)
def test_by_address_is_case_insensitive(accounts, alice, address):
    assert accounts.by_address(address) == alice


def test_by_address_unknown(accounts, alice):
    assert accounts.by_address("nobody@example.org") is None
    assert accounts.by_address("") is None


def test_list_by_state(accounts, alice):
    accounts.add("bob", "bob@example.org", "Bob", PASSWORD)
    accounts.set_disabled("bob")
    assert [a.login for a in accounts.list(disabled=True)] == ["bob"]
    assert [a.login for a in accounts.list(disabled=False)] == ["alice"]
    assert [a.login for a in accounts.list()] == ["alice", "bob"]
    assert accounts.get("bob").disabled is True
    accounts.set_disabled("bob", False)
    assert accounts.list(disabled=True) == []


def test_set_disabled_unknown_login(accounts):
    with pytest.raises(AccountError, match="no account 'ghost'"):
        accounts.set_disabled("ghost")


def test_verify_right_password(accounts, alice):
    assert accounts.verify("alice", PASSWORD) == alice


@pytest.mark.parametrize(
    "password", ["wrong password", "", PASSWORD.upper(), PASSWORD + " ", PASSWORD[:-1]]
)
def test_verify_wrong_password(accounts, alice, password):
    assert accounts.verify("alice", password) is None


def test_verify_unknown_login(accounts, alice):
    assert accounts.verify("nobody", PASSWORD) is None
    assert accounts.verify("", "") is None
    assert accounts.verify("no such account", "no such account") is None


def test_disabled_account_cannot_verify(accounts, alice):
    accounts.set_disabled("alice")
    assert accounts.verify("alice", PASSWORD) is None
    accounts.set_disabled("alice", False)
    assert accounts.verify("alice", PASSWORD) == alice


def test_account_without_password_cannot_verify(accounts, database):
    with database.transaction() as conn:
        conn.execute(
            "INSERT INTO accounts (login, email, name, source)"
            " VALUES ('dir', 'dir@x.org', 'D', 'ldap')"
        )
    assert accounts.verify("dir", "") is None
    assert accounts.verify("dir", "no such account") is None


def test_duplicate_login_refused(accounts, alice):
    with pytest.raises(AccountError, match="already exists"):
        accounts.add("alice", "other@example.org", "Other", PASSWORD)
    assert accounts.by_address("other@example.org") is None


@pytest.mark.parametrize("email", ["alice.martin@example.org", "ALICE.MARTIN@example.ORG"])
def test_duplicate_email_refused(accounts, alice, email):
    with pytest.raises(AccountError, match="already the address of 'alice'"):
        accounts.add("alice2", email, "Alice bis", PASSWORD)
    assert accounts.get("alice2") is None


@pytest.mark.parametrize(
    "login",
    [
        "*)(uid=*",
        "Alice",
        "ALICE",
        "",
        "-alice",
        ".alice",
        "alice martin",
        "alice/../bob",
        "alice@example.org",
        "élodie",
        "a" * 65,
    ],
)
def test_invalid_login_refused(accounts, login):
    with pytest.raises(AccountError, match="invalid login"):
        accounts.add(login, "someone@example.org", "Someone", PASSWORD)
    assert accounts.list() == []


@pytest.mark.parametrize("login", ["a", "alice", "alice.martin", "a_b-c", "0day", "a" * 64])
def test_valid_logins(login):
    assert check_login(login) == login


def test_login_with_trailing_newline_refused(accounts):
    with pytest.raises(AccountError):
        accounts.add("alice\n", "someone@example.org", "Someone", PASSWORD)


@pytest.mark.parametrize(
    "email",
    [
        "",
        "alice",
        "alice@",
        "@example.org",
        "alice@example",
        "a b@example.org",
        "alice@example.org\nBcc: x@y.org",
        "alice@example.org,bob@example.org",
        "<alice@example.org>",
    ],
)
def test_invalid_email_refused(accounts, email):
    with pytest.raises(AccountError, match="invalid e-mail"):
        accounts.add("alice", email, "Alice", PASSWORD)
    assert accounts.get("alice") is None


def test_localhost_email_allowed():
    assert check_email("admin@localhost") == "admin@localhost"


@pytest.mark.parametrize("password", ["", "short", "1234567"])
def test_short_password_refused(accounts, password):
    with pytest.raises(AccountError, match="at least 8 characters"):
        accounts.add("alice", "alice@example.org", "Alice", password)
    assert accounts.get("alice") is None


def test_eight_character_password_accepted(accounts):
    accounts.add("alice", "alice@example.org", "Alice", "12345678")
    assert accounts.verify("alice", "12345678") is not None


@pytest.mark.parametrize("field", ["name", "entity"])
@pytest.mark.parametrize("bad", ["Alice\nMartin", "Alice\r\nBcc: x@y.org", "Alice\0"])
def test_line_breaks_in_name_or_entity_refused(accounts, field, bad):
    values = {"name": "Alice", "entity": ""}
    values[field] = bad
    with pytest.raises(AccountError, match="cannot contain line breaks"):
        accounts.add("alice", "alice@example.org", values["name"], PASSWORD, values["entity"])
    assert accounts.get("alice") is None


def test_password_is_stored_hashed(accounts, alice, database):
    with database.reading() as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM accounts WHERE login = 'alice'"
        ).fetchone()
        dump = "\n".join(
            repr(tuple(row))
            for table in ("accounts", "account_addresses", "portal_sessions")
            for row in conn.execute(f"SELECT * FROM {table}").fetchall()
        )
    assert stored != PASSWORD
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in dump


def test_same_password_gives_different_hashes(accounts, database):
    accounts.add("alice", "alice@example.org", "Alice", PASSWORD)
    accounts.add("bob", "bob@example.org", "Bob", PASSWORD)
    with database.reading() as conn:
        hashes = [r[0] for r in conn.execute("SELECT password_hash FROM accounts")]
    assert len(set(hashes)) == 2


def test_accounts_survive_reopening(tmp_path):
    first = open_db(tmp_path / "db.sqlite3")
    Accounts(first).add("alice", "alice@example.org", "Alice", PASSWORD)
    first.close()
    second = open_db(tmp_path / "db.sqlite3")
    try:
        found = Accounts(second).verify("alice", PASSWORD)
        assert found is not None
        assert found.login == "alice"
    finally:
        second.close()
