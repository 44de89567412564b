"""Pure parts: entry → account mapping, change marks, LDAP settings (no server)."""

from __future__ import annotations

import pytest

from ldap_sync.directory import Directory, DirectoryConfig, DirectoryError
from ldap_sync.entries import (
    AttributeMap,
    ChangeMark,
    DirectoryUser,
    UnusableEntry,
    choose_mark,
    mail_address,
    member_keys,
    normalise_dn,
    user_from_entry,
)
from visio_core.settings import SettingsError, resolve

MAP = AttributeMap(
    login="uid",
    mail="mail",
    alt_mail=("mailAlternateAddress", "proxyAddresses"),
    names=("displayName", "cn"),
    entity="ou",
)
DN = "uid=alice,ou=Sales,ou=people,dc=example,dc=org"


def entry(**attrs: list[str]) -> dict[str, list[bytes]]:
    return {k: [v.encode() for v in vs] for k, vs in attrs.items()}


def test_entry_becomes_account_with_every_address():
    user = user_from_entry(
        MAP,
        DN,
        entry(
            UID=["Alice"],  # attribute names and logins in any case
            mail=["Alice.Martin@Example.org"],
            mailAlternateAddress=["alice@old.example", "ALICE.MARTIN@example.org"],
            proxyAddresses=["SMTP:alice.martin@example.org", "smtp:am@example.org", "X500:/o=x"],
            displayName=["Alice Martin"],
            ou=["Sales"],
            entryCSN=["20250101120000.000001Z#000000#000#000000"],
            modifyTimestamp=["20250101120000Z"],
        ),
    )
    assert user.login == "alice"
    assert user.email == "Alice.Martin@Example.org"
    assert user.addresses == ("alice.martin@example.org", "alice@old.example", "am@example.org")
    assert user.name == "Alice Martin"
    assert user.entity == "Sales"
    assert dict(user.stamps) == {
        "entryCSN": "20250101120000.000001Z#000000#000#000000",
        "modifyTimestamp": "20250101120000Z",
    }


def test_name_falls_back_to_cn_then_login_and_loses_line_breaks():
    base = {"uid": ["bob"], "mail": ["bob@example.org"]}
    assert user_from_entry(MAP, DN, entry(**base, cn=["Bob\r\nBcc: x"])).name == "Bob Bcc: x"
    assert user_from_entry(MAP, DN, entry(**base)).name == "bob"


def test_entity_from_parent_ou_or_none():
    parent = AttributeMap("uid", "mail", (), ("cn",), "parent")
    attrs = entry(uid=["a"], mail=["a@example.org"], ou=["ignored"])
    assert user_from_entry(parent, DN, attrs).entity == "Sales"
    none = AttributeMap("uid", "mail", (), ("cn",), "")
    assert user_from_entry(none, DN, attrs).entity == ""


@pytest.mark.parametrize(
    "attrs",
    [
        {"mail": ["x@example.org"]},  # no login
        {"uid": ["has space"], "mail": ["x@example.org"]},
        {"uid": ["x@corp"], "mail": ["x@example.org"]},  # not a path-safe login
        {"uid": ["x"]},  # no mail
        {"uid": ["x"], "mail": ["not-an-address"]},
    ],
)
def test_entries_that_cannot_be_accounts(attrs):
    with pytest.raises(UnusableEntry):
        user_from_entry(MAP, DN, entry(**attrs))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("a@example.org", "a@example.org"),
        ("SMTP:a@example.org", "a@example.org"),
        ("smtp:b@example.org", "b@example.org"),
        ("X500:/o=Org/ou=Exchange", None),
        ("sip:a@example.org", None),
        ("a@example.org\r\nBcc: x@evil", None),
    ],
)
def test_mail_address_values(value, expected):
    assert mail_address(value) == expected


def test_dn_normalisation_and_group_members():
    assert normalise_dn("UID=Alice, OU=People,dc=Example, dc=org") == normalise_dn(
        "uid=alice,ou=people,dc=example,dc=org"
    )
    keys = member_keys(["uid=Alice, ou=People,dc=example,dc=org", "BOB", " "])
    assert keys == {"uid=alice,ou=people,dc=example,dc=org", "bob"}


def _user(**stamps: str) -> DirectoryUser:
    return DirectoryUser("dn", "l", "l@example.org", (), "L", "", tuple(stamps.items()))


def test_change_marks_prefer_exact_counters_that_every_entry_has():
    users = [
        _user(entryCSN="20250101.000002Z#0", modifyTimestamp="20250101120000Z"),
        _user(entryCSN="20250101.000009Z#0", modifyTimestamp="20250101120000Z"),
    ]
    assert choose_mark(users) == ChangeMark("entryCSN", "20250101.000009Z#0")
    users.append(_user(modifyTimestamp="20250101130000Z"))  # this one lacks entryCSN
    assert choose_mark(users) == ChangeMark("modifyTimestamp", "20250101130000Z")
    assert choose_mark([]) is None


def test_change_mark_filters():
    # A counter pins the last change exactly: strictly after it.
    assert ChangeMark("uSNChanged", "41").newer_filter() == "(uSNChanged>=42)"
    assert ChangeMark("uSNChanged", "9").later("10").value == "10"  # numeric, not text order
    # Times and CSNs: at or after (the last one is read again, never missed), escaped.
    assert ChangeMark("modifyTimestamp", "2025*)(x=1").newer_filter() == (
        "(modifyTimestamp>=2025\\2a\\29\\28x=1)"
    )


def test_ldap_settings_defaults_and_checks():
    s = resolve({}, {"VISIO_LDAP_URI": "ldaps://ldap.example.org/"})
    assert s.ldap_uri == "ldaps://ldap.example.org"
    assert s.ldap_alt_mail_attributes == ("mailAlternateAddress", "proxyAddresses")
    assert s.ldap_name_attributes == ("displayName", "cn")
    assert (s.ldap_starttls, s.ldap_sync_interval, s.ldap_full_sync_interval) == (False, 300, 3600)
    s = resolve({"ldap_starttls": "yes"}, {"VISIO_LDAP_ENTITY_ATTRIBUTE": "departmentNumber"})
    assert s.ldap_starttls and s.ldap_entity_attribute == "departmentNumber"
    for env in (
        {"VISIO_LDAP_URI": "http://ldap.example.org"},
        {"VISIO_LDAP_LOGIN_ATTRIBUTE": "uid)(objectClass=*"},  # it goes into filters
        {"VISIO_LDAP_MAIL_ATTRIBUTE": "mail*"},
        {"VISIO_LDAP_STARTTLS": "maybe"},
        {"VISIO_LDAP_SYNC_INTERVAL": "-5"},
    ):
        with pytest.raises(SettingsError):
            resolve({}, env)


def test_directory_config_reads_password_file_and_never_shows_it(tmp_path):
    secret = tmp_path / "bind-password"
    secret.write_text("s3cret-from-file\n")
    s = resolve(
        {},
        {
            "VISIO_LDAP_URI": "ldap://127.0.0.1:1",
            "VISIO_LDAP_BASE": "dc=example,dc=org",
            "VISIO_LDAP_BIND_DN": "cn=reader,dc=example,dc=org",
            "VISIO_LDAP_BIND_PASSWORD_FILE": str(secret),
            "VISIO_LDAP_FILTER": "objectClass=person",
        },
    )
    config = DirectoryConfig.from_settings(s)
    assert config.bind_password == "s3cret-from-file"
    assert "s3cret" not in repr(config)
    assert config.filter == "(objectClass=person)"
    # An empty password is refused before anything is sent: nothing listens on
    # port 1, so reaching the network at all would raise DirectoryUnavailable.
    assert Directory(config).authenticate("alice", "") is None
    secret.unlink()
    with pytest.raises(DirectoryError, match="VISIO_LDAP_BIND_PASSWORD_FILE"):
        DirectoryConfig.from_settings(s)
    with pytest.raises(DirectoryError, match="VISIO_LDAP_BASE"):
        DirectoryConfig.from_settings(resolve({}, {"VISIO_LDAP_URI": "ldap://h"}))
