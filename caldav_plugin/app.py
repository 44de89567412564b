"""The Radicale application subclass and the CalDAV server launcher."""

from __future__ import annotations

import io
import logging
import socket
from collections.abc import Iterable, Mapping
from http import client
from typing import Any

import radicale.server
from radicale import config as radicale_config
from radicale import httputils, pathutils
from radicale import log as radicale_log
from radicale import storage as radicale_storage
from radicale.app import Application as RadicaleApplication
from radicale.log import logger as radicale_logger

from caldav_plugin import agenda_index, dav, internal_api, request, services
from caldav_plugin.ldap_auth import LoginUnavailable
from caldav_plugin.writer import EventWriter
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
            return EventWriter(self._storage).draft("/".join(parts[:-1]), cal, old)
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

    def _handle_request(self, environ: Mapping[str, Any]) -> Any:
        try:
            return super()._handle_request(environ)
        except LoginUnavailable:
            # The directory cannot check passwords now (logged by the auth plugin).
            # 503 + Retry-After tells clients to come back; Radicale would say 500.
            body = b"The account directory is unreachable; try again in a minute.\n"
            headers = [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Retry-After", "60"),
                ("Content-Length", str(len(body))),
            ]
            return "503 Service Unavailable", headers, [body]

    def do_PUT(
        self,
        environ: Mapping[str, Any],
        base_prefix: str,
        path: str,
        user: str,
        user_groups: set[str],
        request_info: dict[str, Any],
    ) -> Any:
        try:
            body = httputils.read_request_body(self.configuration, environ, request_info)
        except Exception:  # Radicale answers these itself; let it read the same error
            return super().do_PUT(environ, base_prefix, path, user, user_groups, request_info)
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
        if "RRULE" in body and put.calendar is not None:
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
