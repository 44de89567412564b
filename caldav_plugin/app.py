"""The Radicale application subclass and the CalDAV server launcher."""

from __future__ import annotations

import io
import logging
import os
import secrets
import socket
import time
from collections.abc import Iterable, Mapping
from http import client
from typing import Any

import radicale.server
from radicale import config as radicale_config
from radicale import httputils, pathutils
from radicale import log as radicale_log
from radicale import storage as radicale_storage
from radicale.app import Application as RadicaleApplication
from radicale.app.base import Access
from radicale.log import logger as radicale_logger

from caldav_plugin import agenda_index, credentials, dav, internal_api, request, services
from caldav_plugin.login import Caller, LoginUnavailable, current_caller
from caldav_plugin.writer import EventWriter
from visio_core import ical
from visio_core.recurrence import excessive_recurrence
from visio_core.settings import Settings

log = logging.getLogger("visio.caldav")


class Application(RadicaleApplication):
    """Radicale, plus: the raw PUT body for the storage, no strong ETag on rewritten PUTs,
    and the scheduling surface (RFC 6638) Radicale does not have."""

    def __call__(self, environ: Mapping[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "").startswith("/.visio/"):
            return internal_api.handle(self._storage, environ, start_response)

        def advertise(status: str, headers: list[tuple[str, str]], *exc: Any) -> Any:
            # The server sends invitations itself, so clients must not (RFC 6638 2.1).
            headers = [
                (k, f"{v}, calendar-auto-schedule" if k.upper() == "DAV" else v) for k, v in headers
            ]
            return start_response(status, headers, *exc)

        return super().__call__(environ, advertise)

    def do_PROPFIND(
        self,
        environ: Mapping[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        status, headers, answer, xml = super().do_PROPFIND(
            environ, base_prefix, path, user, user_groups, request_info
        )
        if status == client.MULTI_STATUS and isinstance(answer, bytes):
            accounts = services.get().accounts
            answer = dav.complete_propfind(
                answer,
                base_prefix,
                lambda login: accounts.get(login) if login == user else None,
                lambda account: list(accounts.addresses(account.login)) or [account.email],
            )
        return status, headers, answer, xml

    def do_POST(
        self,
        environ: Mapping[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        parts = [p for p in path.split("/") if p]
        if len(parts) != 2 or parts[1] != "outbox":
            return super().do_POST(environ, base_prefix, path, user, user_groups, request_info)
        if not user or parts[0] != user:
            return httputils.NOT_ALLOWED
        try:
            body = httputils.read_request_body(self.configuration, environ, request_info)
            with self._storage.acquire_lock("r", user):
                xml = dav.freebusy_response(body, self._calendars_of)
        except (ValueError, KeyError, RuntimeError) as e:
            return (
                client.BAD_REQUEST,
                {"Content-Type": "text/plain"},
                f"Bad free/busy request: {e}",
                None,
            )
        return client.OK, {"Content-Type": "application/xml; charset=utf-8"}, xml, None

    def _draft(self, put: request.PutRequest, path: str, user: str) -> Any:
        """The stored form of a plain PUT, computed before Radicale's write lock.

        Serialising a large event is the slow part of a save; done here, other
        people's requests do not wait for it. The storage checks again under the
        lock that nothing the draft read has changed, and drafts again if it has.
        """
        uid = put.single_uid()
        parts = pathutils.strip_path(path).split("/")
        if uid is None or not user or parts[0] != user or len(parts) < 3:
            return None
        try:
            with self._storage.acquire_lock("r", user):
                old = next(iter(self._storage.discover(path)), None)
            if isinstance(old, radicale_storage.BaseCollection):
                return None
            cal = put.calendar_for(uid)
            if cal is None:
                return None
            collection = "/".join(parts[:-1])
            return EventWriter(self._storage).draft(collection, cal, old, as_sent=put.as_sent)
        except Exception:  # the storage call drafts again under the lock
            log.warning("drafting %s before the lock failed", path, exc_info=True)
            return None

    def _calendars_of(self, address: str) -> list[Any] | None:
        account = services.get().accounts.by_address(address)
        if account is None or account.disabled:
            return None
        return [
            c
            for c in self._storage.discover(f"/{account.login}/", depth="1")
            if isinstance(c, radicale_storage.BaseCollection) and c.tag == "VCALENDAR"
        ]

    def _plain(
        self, status: str, text: str, headers: Iterable[tuple[str, str]] = ()
    ) -> tuple[str, list[tuple[str, str]], list[bytes]]:
        """A short text answer given before Radicale handles the request."""
        body = text.encode("utf-8")
        return (
            status,
            [
                *headers,
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(body))),
                *self._extra_headers.items(),
            ],
            [body],
        )

    def _failed_login_delay(self) -> None:
        """Radicale's own wait after a failed login (app/__init__.py): [auth] delay
        times 0.5 to 1.5, fixed under pytest as Radicale has it."""
        if self._auth_delay > 0:
            fixed = "PYTEST_VERSION" in os.environ
            factor = 1.0 if fixed else secrets.SystemRandom().uniform(0.5, 1.5)
            time.sleep(self._auth_delay * factor)

    def _unreadable(self, environ: Mapping[str, Any]) -> Any:
        """The answer to a request whose headers Radicale would fail on (500), or None."""
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        charset = credentials.unknown_charset(environ)
        if charset is not None:
            log.warning("%s %r refused: unknown charset %r", method, path, charset)
            text = f"This server does not know the charset {charset!r}; send UTF-8.\n"
            return self._plain("400 Bad Request", text)
        problem = credentials.basic_problem(
            str(environ.get("HTTP_AUTHORIZATION", "")),
            lambda raw: httputils.decode_request(self.configuration, environ, raw),
        )
        if problem is None:
            return None
        remote = environ.get("REMOTE_ADDR", "unknown")
        if environ.get("HTTP_X_FORWARDED_FOR"):
            remote = f"{remote} (forwarded for {environ['HTTP_X_FORWARDED_FOR']!r})"
        # One line, no traceback: a malformed header is a failed login, answered as one.
        log.warning(
            "Failed login attempt from %s: malformed Authorization header (%s) on %s %r",
            remote,
            problem,
            method,
            path,
        )
        self._failed_login_delay()
        return self._plain(
            "401 Unauthorized",
            f"The Authorization header cannot be read: {problem}.\n",
            [("WWW-Authenticate", f'Basic realm="{self._auth_realm}"')],
        )

    def _handle_request(self, environ: Mapping[str, Any]) -> Any:
        environ = credentials.with_plain_charset(environ)
        refusal = self._unreadable(environ)
        if refusal is not None:
            return refusal
        # Who is asking, for the password throttle (caldav_plugin.login reads it).
        caller = current_caller.set(
            Caller(
                str(environ.get("REMOTE_ADDR", "")) or "unknown",
                str(environ.get("HTTP_X_FORWARDED_FOR", "")),
                str(environ.get("HTTP_X_VISIO_CLIENT", "")),
            )
        )
        try:
            return super()._handle_request(environ)
        except LoginUnavailable as e:
            # The directory cannot check passwords now, or every check slot is taken
            # (logged by the auth plugin). 503 + Retry-After tells clients to come
            # back; Radicale would say 500. X-Visio-Refusal tells the backend which.
            body = e.text.encode()
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Retry-After", str(e.retry_after)),
                ("X-Visio-Refusal", e.reason),
                ("Content-Length", str(len(body))),
            ]
            return "503 Service Unavailable", headers, [body]
        finally:
            current_caller.reset(caller)

    def do_PUT(
        self,
        environ: Mapping[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        if not Access(self._rights, user, user_groups, path).check("w"):
            # Radicale refuses it (401/403) before reading anything; so do we.
            return super().do_PUT(environ, base_prefix, path, user, user_groups, request_info)
        try:
            raw = httputils.read_raw_request_body(self.configuration, environ)
        except Exception:  # Radicale answers these itself; let it read the same error
            return super().do_PUT(environ, base_prefix, path, user, user_groups, request_info)
        charset = credentials.declared_charset(environ) or self._encoding
        try:
            body = ical.decode(raw, charset)
        except ValueError as e:
            return self._refuse_put(path, str(e))
        problem = ical.control_character(body)
        if problem:  # refused whole: nothing stored is silently different from what was sent
            return self._refuse_put(path, problem)
        encoded = body.encode("utf-8")
        mime = environ.get("CONTENT_TYPE", "").split(";", 1)[0]
        environ = dict(environ)
        environ["wsgi.input"] = io.BytesIO(encoded)
        environ["CONTENT_LENGTH"] = str(len(encoded))
        environ["CONTENT_TYPE"] = (
            f"{mime}; charset=utf-8" if mime else "text/calendar; charset=utf-8"
        )
        environ.pop("HTTP_CONTENT_ENCODING", None)
        put = request.PutRequest(body)
        if put.calendar is not None and any(k in body for k in ("RRULE", "RDATE", "RECURRENCE-ID")):
            problem = excessive_recurrence(put.calendar, self._max_vevent_rrule_occurrence)
            if problem:
                log.warning("PUT %s refused: %s", path, problem)
                return (
                    client.BAD_REQUEST,
                    {"Content-Type": "text/plain; charset=utf-8"},
                    problem,
                    None,
                )
        put.split()  # the slow parse happens here, not under the storage lock
        if put.single_uid():
            put.as_sent = ical.as_stored(body)
        put.draft = self._draft(put, path, user)
        token = request.current_put.set(put)
        try:
            status, headers, answer, xml = super().do_PUT(
                environ, base_prefix, path, user, user_groups, request_info
            )
        finally:
            request.current_put.reset(token)
        if put.rewritten and "ETag" in headers:
            # RFC 4791 5.3.4: the stored body differs, so no strong ETag; clients refetch.
            headers = {k: v for k, v in dict(headers).items() if k != "ETag"}
        return status, headers, answer, xml

    def _refuse_put(self, path: str, reason: str) -> Any:
        log.warning("PUT %s refused: %s", path, reason)
        # Radicale adds "; charset=utf-8" to a text answer itself.
        return client.BAD_REQUEST, {"Content-Type": "text/plain"}, reason, None


def radicale_configuration(
    settings: Settings, file_sections: dict[str, dict[str, str]]
) -> radicale_config.Configuration:
    """Radicale's configuration: radicale.conf's sections, then what the product imposes."""
    configuration = radicale_config.load()
    configuration.update(file_sections, "radicale.conf")
    host, port = settings.caldav_listen
    configuration.update(
        {
            "server": {"hosts": f"{host}:{port}"},
            "storage": {
                "type": "caldav_plugin.storage",
                "filesystem_folder": str(settings.collections_dir),
            },
            "auth": {
                "type": "caldav_plugin.ldap_auth" if settings.ldap_uri else "caldav_plugin.auth"
            },
            "rights": {"type": "owner_only"},
            "hook": {"type": "none"},
        },
        "visio",
    )
    return configuration


def serve(shutdown_socket: socket.socket | None = None) -> None:
    """Run the CalDAV server until `shutdown_socket`'s peer closes (or forever)."""
    import os

    from visio_core import settings as settings_mod

    settings, sections = settings_mod.load(os.environ)
    services.install(services.Services(settings))
    configuration = radicale_configuration(settings, sections)
    radicale_log.setup()
    radicale_log.set_level(
        configuration.get("logging", "level"), configuration.get("logging", "backtrace_on_debug")
    )
    agenda_index.keep_whole(radicale_storage.load(configuration), services.get().db)
    # radicale.server builds `radicale.Application`; this is the one seam to give it ours.
    radicale.server.Application = Application  # type: ignore[attr-defined]
    radicale_logger.info("Visio CalDAV server on %s", settings.caldav_url)
    radicale.server.serve(configuration, shutdown_socket)
