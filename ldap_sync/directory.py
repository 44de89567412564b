"""The directory client: ldap3 connections, the password check, paged reads.

Used by the sync (`ldap_sync.sync`) and by the login paths (the CalDAV auth
plugin, later the portal), so that every connection is made the same way:
- TLS is verified (ldaps://, or ldap:// with StartTLS), against the CA file
  when one is given, else the system's CAs; the host name is checked;
- referrals are never chased (a referral could send the service account's
  password, or a user's, to another server);
- every value that goes into a filter is escaped with ldap3's escape_filter_chars;
- an empty password is refused before any bind (many servers answer an empty
  simple bind as an anonymous success);
- timeouts everywhere, and any failure to talk to the directory is one
  exception, DirectoryUnavailable, that callers turn into a clear answer.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ldap3
from ldap3.core import exceptions as ldap_errors
from ldap3.utils.conv import escape_filter_chars

from ldap_sync.entries import (
    AttributeMap,
    ChangeMark,
    DirectoryUser,
    RawValues,
    UnusableEntry,
    member_keys,
    normalise_dn,
    user_from_entry,
)
from visio_core.settings import Settings

log = logging.getLogger("visio.ldap")

# Result codes that mean "the directory cannot serve now", not "no".
_BUSY = {51, 52, 80}  # busy, unavailable, other
_INVALID_CREDENTIALS = 49
_MEMBER_ATTRIBUTES = ("member", "uniqueMember", "memberUid")


class DirectoryError(Exception):
    """The directory cannot be used as configured; the message is for the administrator."""


class DirectoryUnavailable(DirectoryError):
    """The directory did not answer (down, unreachable, TLS refused, timed out)."""


@dataclass(frozen=True)
class DirectoryConfig:
    uri: str
    base: str
    bind_dn: str
    bind_password: str = field(repr=False)  # never in a log line or a traceback's repr
    filter: str
    attributes: AttributeMap
    starttls: bool = False
    ca_file: str = ""
    booking_group: str = ""
    timeout: int = 10  # seconds; ldap3 needs whole seconds for receive timeouts
    page_size: int = 500

    @classmethod
    def from_settings(cls, settings: Settings) -> DirectoryConfig:
        if not settings.ldap_uri:
            raise DirectoryError("VISIO_LDAP_URI is not set")
        if not settings.ldap_base:
            raise DirectoryError("VISIO_LDAP_BASE is not set")
        password = settings.ldap_bind_password
        if settings.ldap_bind_password_file:
            path = Path(settings.ldap_bind_password_file)
            try:
                password = path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as e:
                raise DirectoryError(
                    f"cannot read VISIO_LDAP_BIND_PASSWORD_FILE {path}: {e.strerror}"
                ) from None
        if settings.ldap_bind_dn and not password:
            raise DirectoryError("VISIO_LDAP_BIND_DN is set but its password is empty")
        if settings.ldap_ca_file and not Path(settings.ldap_ca_file).is_file():
            raise DirectoryError(f"VISIO_LDAP_CA_FILE {settings.ldap_ca_file} is not a file")
        return cls(
            uri=settings.ldap_uri,
            base=settings.ldap_base,
            bind_dn=settings.ldap_bind_dn,
            bind_password=password,
            filter=wrap_filter(settings.ldap_filter or "(objectClass=*)"),
            attributes=AttributeMap(
                login=settings.ldap_login_attribute,
                mail=settings.ldap_mail_attribute,
                alt_mail=settings.ldap_alt_mail_attributes,
                names=settings.ldap_name_attributes,
                entity=settings.ldap_entity_attribute,
            ),
            starttls=settings.ldap_starttls,
            ca_file=settings.ldap_ca_file,
            booking_group=settings.ldap_booking_group,
        )

    @property
    def uses_tls(self) -> bool:
        return self.uri.lower().startswith("ldaps://") or self.starttls


def wrap_filter(text: str) -> str:
    text = text.strip()
    return text if text.startswith("(") else f"({text})"


def _describe(result: Mapping[str, Any]) -> str:
    message = str(result.get("message") or "").strip()
    return f"{result.get('description')} ({result.get('result')})" + (
        f": {message}" if message else ""
    )


class Session:
    """One connection bound as the service account; reads for the sync."""

    def __init__(self, conn: ldap3.Connection, config: DirectoryConfig) -> None:
        self.conn = conn
        self.config = config

    def _paged(
        self, search_filter: str, attributes: list[str], on_page: Callable[[int], None] | None
    ) -> Iterator[tuple[str, Mapping[str, RawValues]]]:
        """Every entry the filter selects, a page at a time (directories cap plain searches)."""
        cookie: bytes | str | None = None
        while True:
            self.conn.search(
                self.config.base,
                search_filter,
                search_scope=ldap3.SUBTREE,
                attributes=attributes,
                paged_size=self.config.page_size,
                paged_cookie=cookie,
                time_limit=int(self.config.timeout * 6),
            )
            result = self.conn.result
            if result.get("result") in _BUSY:
                raise DirectoryUnavailable(f"search refused: {_describe(result)}")
            if result.get("result") != 0:
                raise DirectoryError(f"search under {self.config.base} failed: {_describe(result)}")
            count = 0
            for entry in self.conn.response or ():
                if entry.get("type") == "searchResEntry":  # referrals are not followed
                    count += 1
                    yield entry["dn"], entry["raw_attributes"]
            if on_page is not None:
                on_page(count)
            control = (result.get("controls") or {}).get("1.2.840.113556.1.4.319") or {}
            cookie = (control.get("value") or {}).get("cookie")
            if not cookie:
                return

    def users(
        self, since: ChangeMark | None = None, on_page: Callable[[int], None] | None = None
    ) -> Iterator[DirectoryUser | UnusableEntry]:
        """Accounts the filter selects (only those changed since `since`, if given)."""
        search = self.config.filter
        if since is not None:
            search = f"(&{search}{since.newer_filter()})"
        for dn, attrs in self._paged(search, self.config.attributes.wanted, on_page):
            try:
                yield user_from_entry(self.config.attributes, dn, attrs)
            except UnusableEntry as e:
                yield e

    def changed_entries(self, since: ChangeMark) -> Iterator[tuple[str, str]]:
        """(normalised DN, change value) of every entry under the base changed since `since`,
        accounts or not: an account that stopped matching the filter shows up here only."""
        for dn, attrs in self._paged(since.newer_filter(), [since.attribute], None):
            yield normalise_dn(dn), next(iter(_as_list(attrs, since.attribute)), "")

    def group_members(self) -> set[str]:
        """Member keys (normalised DNs, lower-case logins) of the booking group."""
        group = self.config.booking_group
        ok = self.conn.search(
            group,
            "(objectClass=*)",
            search_scope=ldap3.BASE,
            attributes=list(_MEMBER_ATTRIBUTES),
            time_limit=int(self.config.timeout * 6),
        )
        if not ok:
            if self.conn.result.get("result") in _BUSY:
                raise DirectoryUnavailable(
                    f"reading {group} refused: {_describe(self.conn.result)}"
                )
            raise DirectoryError(
                f"cannot read the booking group {group}: {_describe(self.conn.result)}"
            )
        attrs = self.conn.response[0]["raw_attributes"]
        values: list[str] = []
        for name in _MEMBER_ATTRIBUTES:
            values += _as_list(attrs, name)
        return member_keys(values)


def _as_list(attrs: Mapping[str, RawValues], name: str) -> list[str]:
    for key, values in attrs.items():
        if key.lower() == name.lower():
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
    return []


class Directory:
    def __init__(self, config: DirectoryConfig) -> None:
        self.config = config

    def _server(self) -> ldap3.Server:
        tls = None
        if self.config.uses_tls:
            try:
                # version=None: ldap3 uses ssl.create_default_context (TLS 1.2+),
                # then checks the host name itself.
                tls = ldap3.Tls(
                    validate=ssl.CERT_REQUIRED, ca_certs_file=self.config.ca_file or None
                )
            except ldap_errors.LDAPException as e:
                raise DirectoryError(f"TLS configuration: {e}") from None
        # get_info=NONE: no schema download per connection, and attribute names
        # this directory lacks (proxyAddresses on OpenLDAP) are simply not returned.
        # No referral host is trusted either (ldap3's default trusts any, with credentials).
        return ldap3.Server(
            self.config.uri,
            get_info=ldap3.NONE,
            tls=tls,
            connect_timeout=self.config.timeout,
            allowed_referral_hosts=[],
        )

    @contextmanager
    def _connection(self) -> Iterator[ldap3.Connection]:
        """An open (and, if configured, StartTLS-protected) connection, not yet bound."""
        conn = ldap3.Connection(
            self._server(),
            auto_bind=ldap3.AUTO_BIND_NONE,
            auto_referrals=False,
            raise_exceptions=False,
            read_only=True,
            receive_timeout=self.config.timeout,
            return_empty_attributes=False,
        )
        try:
            conn.open(read_server_info=False)
            if self.config.starttls and not self.config.uri.lower().startswith("ldaps://"):
                conn.start_tls(read_server_info=False)
            yield conn
        except ldap_errors.LDAPInvalidFilterError as e:
            raise DirectoryError(f"invalid filter (check VISIO_LDAP_FILTER): {e}") from None
        except (
            ldap_errors.LDAPCommunicationError,
            ldap_errors.LDAPStartTLSError,
            ldap_errors.LDAPCertificateError,
            ldap_errors.LDAPResponseTimeoutError,
            OSError,
        ) as e:
            raise DirectoryUnavailable(f"{self.config.uri}: {_reason(e)}") from None
        except ldap_errors.LDAPException as e:
            raise DirectoryError(f"{self.config.uri}: {_reason(e)}") from None
        finally:
            with contextlib.suppress(Exception):  # the connection may already be gone
                conn.unbind()

    def _bind_service(self, conn: ldap3.Connection) -> None:
        if self.config.bind_dn:
            conn.user, conn.password = self.config.bind_dn, self.config.bind_password
            conn.authentication = ldap3.SIMPLE
        if not conn.bind(read_server_info=False):
            if conn.result.get("result") in _BUSY:
                raise DirectoryUnavailable(f"bind refused: {_describe(conn.result)}")
            who = self.config.bind_dn or "anonymous"
            raise DirectoryError(
                f"the directory refused the bind as {who}: {_describe(conn.result)}"
            )

    @contextmanager
    def session(self) -> Iterator[Session]:
        with self._connection() as conn:
            self._bind_service(conn)
            yield Session(conn, self.config)

    def authenticate(self, login: str, password: str) -> DirectoryUser | None:
        """The directory account these credentials open, or None.

        Raises DirectoryError (DirectoryUnavailable) when the directory cannot
        answer, so that a login is never refused, nor granted, by accident.
        """
        if not login or not password or "\0" in login or len(login) > 256:
            return None  # before any bind: an empty password is an anonymous bind
        wanted = self.config.attributes.wanted
        search = (
            f"(&{self.config.filter}({self.config.attributes.login}={escape_filter_chars(login)}))"
        )
        with self._connection() as conn:
            self._bind_service(conn)
            conn.search(
                self.config.base,
                search,
                search_scope=ldap3.SUBTREE,
                attributes=wanted,
                size_limit=2,
                time_limit=int(self.config.timeout),
            )
            code = conn.result.get("result")
            if code in _BUSY:
                raise DirectoryUnavailable(f"search refused: {_describe(conn.result)}")
            entries = [e for e in conn.response or () if e.get("type") == "searchResEntry"]
            if len(entries) != 1:
                if len(entries) > 1 or code == 4:  # sizeLimitExceeded: the login is ambiguous
                    log.warning("login %r matches several directory entries; refused", login)
                return None
            dn = entries[0]["dn"]
            try:
                user = user_from_entry(self.config.attributes, dn, entries[0]["raw_attributes"])
            except UnusableEntry as e:
                log.warning("login %r refused: %s", login, e)
                return None
            # Same connection, now bound as the person: the password check itself.
            conn.user, conn.password = dn, password
            conn.authentication = ldap3.SIMPLE
            if conn.bind(read_server_info=False):
                return user
            code = conn.result.get("result")
            if code in _BUSY:
                raise DirectoryUnavailable(f"bind refused: {_describe(conn.result)}")
            if code != _INVALID_CREDENTIALS:
                log.info("login %r refused by the directory: %s", login, _describe(conn.result))
            return None


def _reason(e: Exception) -> str:
    """A one-line reason, without ldap3's nested tuple quoting."""
    text = str(e.args[0] if e.args else e)
    while text.startswith(("('", '("')) and text.endswith(("',)", '",)')):
        text = text[2:-3]
    return text or type(e).__name__
