"""From a directory entry to the account it stands for (pure: attributes in, record out).

Directories disagree on where things live: the login may be `uid` or
`sAMAccountName`, alternative addresses `mailAlternateAddress` or Exchange's
`proxyAddresses` (`SMTP:primary@…`, `smtp:alias@…`, `X500:…`), the entity an
attribute or the OU the entry sits in. The attribute names come from the
settings; this module only reads values.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn

from visio_core.accounts import AccountError, check_email, check_login

# VISIO_LDAP_ENTITY_ATTRIBUTE value meaning "the OU the entry sits in".
PARENT_ENTITY = "parent"

# Attributes that order changes, best first. A counter (entryUSN: 389-ds,
# Oracle; uSNChanged: Active Directory) or OpenLDAP's entryCSN (microseconds
# plus a counter) pin the last change exactly; modifyTimestamp has whole
# seconds only, so every entry of the last second is read again, and a bulk
# import that stamped thousands of entries in one second would be re-read in
# full each time. The first attribute that every entry carries wins.
CHANGE_ATTRIBUTES = ("entryUSN", "uSNChanged", "entryCSN", "modifyTimestamp")
_COUNTERS = {"entryusn", "usnchanged"}
_DN_SPACES = re.compile(r"\s*([,=+])\s*")

RawValues = Sequence[bytes | str]


class UnusableEntry(ValueError):
    """The entry cannot be an account (no valid login or e-mail); the message says why."""


@dataclass(frozen=True)
class AttributeMap:
    """Which attributes hold what (from the settings)."""

    login: str
    mail: str
    alt_mail: tuple[str, ...]
    names: tuple[str, ...]
    entity: str

    @property
    def wanted(self) -> list[str]:
        """Attributes to request from the directory."""
        names = [self.login, self.mail, *self.alt_mail, *self.names]
        if self.entity and self.entity.lower() != PARENT_ENTITY:
            names.append(self.entity)
        names.extend(CHANGE_ATTRIBUTES)
        seen: dict[str, str] = {}
        for n in names:
            seen.setdefault(n.lower(), n)
        return list(seen.values())


@dataclass(frozen=True)
class DirectoryUser:
    dn: str  # normalised (see normalise_dn)
    login: str  # lower-case, valid as an account login
    email: str
    addresses: tuple[str, ...]  # every address, lower-case, primary first, no duplicates
    name: str
    entity: str
    stamps: tuple[tuple[str, str], ...] = ()  # (change attribute, value) the entry carries


@dataclass(frozen=True)
class ChangeMark:
    """The last change a run saw: the next incremental run reads what came after."""

    attribute: str
    value: str

    def _key(self, value: str) -> tuple[int, str]:
        if self.attribute.lower() in _COUNTERS:
            return (int(value), "") if value.isdigit() else (-1, "")
        return (0, value)  # generalized time and CSNs sort as text

    def later(self, value: str) -> ChangeMark:
        return ChangeMark(self.attribute, max(self.value, value, key=self._key))

    def newer_filter(self) -> str:
        """An LDAP filter for entries changed at or after this mark (after, for counters)."""
        if self.attribute.lower() in _COUNTERS:
            return f"({self.attribute}>={int(self.value) + 1})"
        return f"({self.attribute}>={escape_filter_chars(self.value)})"


def choose_mark(users: Iterable[DirectoryUser]) -> ChangeMark | None:
    """The best change attribute every one of these entries carries, at its latest value."""
    latest: dict[str, ChangeMark] = {}
    counts: dict[str, int] = {}
    total = 0
    for user in users:
        total += 1
        for attribute, value in user.stamps:
            counts[attribute] = counts.get(attribute, 0) + 1
            mark = latest.get(attribute)
            latest[attribute] = mark.later(value) if mark else ChangeMark(attribute, value)
    for attribute in CHANGE_ATTRIBUTES:
        if total and counts.get(attribute) == total:
            return latest[attribute]
    return None


def normalise_dn(dn: str) -> str:
    """One spelling per DN (case, spaces around separators), so that DNs from
    entries and from group members compare equal. A comparison key, not a DN:
    cheaper than a full parse, which matters at 50,000 entries per pass."""
    return _DN_SPACES.sub(r"\1", dn.strip().lower())


def _text(value: bytes | str) -> str:
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    # Names end up in iCalendar and mail headers: no line breaks or NULs there.
    return " ".join(text.replace("\0", " ").split())


def _values(attributes: Mapping[str, RawValues], name: str) -> list[str]:
    """Values of an attribute; `attributes` has lower-case keys (see user_from_entry)."""
    values = attributes.get(name.lower(), ())
    if isinstance(values, bytes | str):
        values = [values]
    return [t for t in (_text(v) for v in values) if t]


def _first(attributes: Mapping[str, RawValues], names: Iterable[str]) -> str:
    for name in names:
        values = _values(attributes, name)
        if values:
            return values[0]
    return ""


def mail_address(value: str) -> str | None:
    """A plain address from an attribute value, or None: `smtp:a@b` → `a@b`, `X500:…` → None."""
    prefix, colon, rest = value.partition(":")
    if colon and "@" not in prefix:
        if prefix.lower() != "smtp":
            return None  # x500:, sip:, eum: … are not mail addresses
        value = rest
    try:
        return check_email(value)
    except AccountError:
        return None


def parent_rdn_value(dn: str) -> str:
    try:
        parts = parse_dn(dn)
    except Exception:
        return ""
    return str(parts[1][1]) if len(parts) > 1 else ""


def user_from_entry(
    mapping: AttributeMap, dn: str, attributes: Mapping[str, RawValues]
) -> DirectoryUser:
    """The account this entry describes; UnusableEntry when it cannot be one."""
    attributes = {k.lower(): v for k, v in attributes.items()}  # names are case-insensitive
    raw_login = _first(attributes, [mapping.login])
    try:
        login = check_login(raw_login.lower())
    except AccountError as e:
        raise UnusableEntry(f"{dn}: {e}") from None
    email = None
    for value in _values(attributes, mapping.mail):
        email = mail_address(value)
        if email:
            break
    if not email:
        raise UnusableEntry(f"{dn}: no usable e-mail address in {mapping.mail!r}")
    addresses = [email.lower()]
    for name in mapping.alt_mail:
        for value in _values(attributes, name):
            address = mail_address(value)
            if address and address.lower() not in addresses:
                addresses.append(address.lower())
    if mapping.entity.lower() == PARENT_ENTITY:
        entity = parent_rdn_value(dn)
    else:
        entity = _first(attributes, [mapping.entity]) if mapping.entity else ""
    return DirectoryUser(
        dn=normalise_dn(dn),
        login=login,
        email=email,
        addresses=tuple(addresses),
        name=_first(attributes, mapping.names) or login,
        entity=entity,
        stamps=tuple(
            (name, value) for name in CHANGE_ATTRIBUTES if (value := _first(attributes, [name]))
        ),
    )


def member_keys(values: Iterable[str]) -> set[str]:
    """Group member values as comparable keys: DNs normalised, bare logins (memberUid) lowered."""
    keys = set()
    for value in values:
        value = value.strip()
        if "=" in value:
            keys.add(normalise_dn(value))
        elif value:
            keys.add(value.lower())
    return keys
