"""The portal talks to the calendar server as the user, over CalDAV like any client.

Signing in is a real PROPFIND with the given password, so local and LDAP
accounts, Radicale's delays after failures and the password throttle all apply
(caldav_plugin.login); the person's address goes with it, vouched under the
server key (visio_core/client_address.py), so the throttle counts the person.
Afterwards the portal writes with `tokens.service_password` (a short-lived
password minted from the server key): the user's real password is never kept.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import quote, unquote, urljoin, urlsplit
from xml.sax.saxutils import escape

import aiohttp

from visio_core import client_address, tokens

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
TIMEOUT = aiohttp.ClientTimeout(total=30)


class CalDavError(Exception):
    """The calendar server answered something the portal cannot use."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status} {reason}")
        self.status = status
        self.reason = reason


class DirectoryDown(CalDavError):
    """503 on sign-in: the directory (LDAP) behind the server does not answer."""


class Busy(CalDavError):
    """503 on sign-in: every password-check slot is taken; try again after `retry_after`."""

    def __init__(self, status: int, reason: str, retry_after: int) -> None:
        super().__init__(status, reason)
        self.retry_after = retry_after


@dataclass(frozen=True)
class Resource:
    href: str  # absolute path on the CalDAV server
    etag: str
    text: str


def _stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")


class CalDav:
    def __init__(
        self,
        http: aiohttp.ClientSession,
        base_url: str,
        key: bytes,
    ) -> None:
        self.http = http
        self.base = base_url.rstrip("/") + "/"
        self.key = key
        # login -> calendar path: found once per process (PROPFIND depth 1 is not free).
        self._calendars: dict[str, str] = {}

    def _auth(self, login: str) -> aiohttp.BasicAuth:
        return aiohttp.BasicAuth(login, tokens.service_password(self.key, login, time.time()))

    def url(self, path: str) -> str:
        return urljoin(self.base, path)

    async def authenticate(
        self, login: str, password: str, client: str = "", via: str = ""
    ) -> bool:
        """True if the server accepts these credentials; raises if it cannot tell.

        `client` is the person's address and `via` the surface ("portal", "room"):
        the server's throttle counts and logs them instead of this backend's address.
        """
        if not login or "/" in login or not password:
            return False
        headers = {"Depth": "0", "Content-Type": "application/xml"}
        if client:
            headers[client_address.HEADER] = client_address.vouch(
                self.key, client, via or "backend", login, time.time()
            )
        async with self.http.request(
            "PROPFIND",
            self.url(quote(login) + "/"),
            auth=aiohttp.BasicAuth(login, password),
            headers=headers,
            data=b'<?xml version="1.0"?><propfind xmlns="DAV:"><prop><resourcetype/></prop>'
            b"</propfind>",
            timeout=TIMEOUT,
        ) as r:
            await r.read()
            if r.status in (200, 207):
                return True
            if r.status in (401, 403):
                return False
            if r.status == 503 and r.headers.get("X-Visio-Refusal") == "busy":
                after = r.headers.get("Retry-After", "")
                raise Busy(r.status, r.reason or "", int(after) if after.isdigit() else 5)
            if r.status == 503:
                raise DirectoryDown(r.status, r.reason or "")
            raise CalDavError(r.status, r.reason or "")

    async def calendar(self, login: str) -> str:
        """Path of the user's first calendar collection, created if there is none."""
        if login in self._calendars:
            return self._calendars[login]
        home = "/" + quote(login) + "/"
        body = (
            b'<?xml version="1.0"?><propfind xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            b"<prop><resourcetype/><C:supported-calendar-component-set/></prop></propfind>"
        )
        async with self.http.request(
            "PROPFIND",
            self.url(home),
            auth=self._auth(login),
            headers={"Depth": "1", "Content-Type": "application/xml"},
            data=body,
            timeout=TIMEOUT,
        ) as r:
            text = await r.read()
            if r.status not in (207, 404):
                raise CalDavError(r.status, r.reason or "")
        found = _first_event_calendar(text, home) if r.status == 207 else None
        if found is None:
            found = home + "calendar/"
            async with self.http.request(
                "MKCALENDAR", self.url(found), auth=self._auth(login), timeout=TIMEOUT
            ) as r:
                await r.read()
                if r.status not in (201, 405):  # 405: created meanwhile
                    raise CalDavError(r.status, r.reason or "")
        self._calendars[login] = found
        return found

    async def query(
        self, login: str, start: dt.datetime, end: dt.datetime, data: bool = True
    ) -> list[Resource]:
        """Every event resource with an occurrence in [start, end) (calendar-query REPORT).

        data=False asks for ETags only (text left empty): much cheaper when most
        events are already known, see `multiget`.
        """
        path = await self.calendar(login)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:prop><D:getetag/>{'<C:calendar-data/>' if data else ''}</D:prop>"
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{_stamp(start)}" end="{_stamp(end)}"/>'
            "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
        ).encode()
        return await self._report(login, path, body, data)

    async def multiget(self, login: str, hrefs: list[str]) -> list[Resource]:
        """The named resources with their data (calendar-multiget REPORT)."""
        if not hrefs:
            return []
        path = await self.calendar(login)
        items = "".join(f"<D:href>{escape(h)}</D:href>" for h in hrefs)
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            '<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            f"<D:prop><D:getetag/><C:calendar-data/></D:prop>{items}</C:calendar-multiget>"
        ).encode()
        return await self._report(login, path, body, True)

    async def _report(self, login: str, path: str, body: bytes, data: bool) -> list[Resource]:
        async with self.http.request(
            "REPORT",
            self.url(path),
            auth=self._auth(login),
            headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
            data=body,
            timeout=TIMEOUT,
        ) as r:
            text = await r.read()
            if r.status != 207:
                raise CalDavError(r.status, r.reason or "")
        return _resources(text, data)

    def owns(self, login: str, href: str) -> bool:
        """Only resources under the user's own collections: nobody edits others' files.

        Every href a page or form hands in passes here. It is checked as the
        HTTP client will send it, percent-decoded: `/mallory/%2e%2e/alice/…`
        is `/alice/…` once resolved, so any "." or ".." segment is refused.
        """
        home = "/" + quote(login) + "/"
        if len(href) > 1024 or not href.startswith(home) or not href.isprintable():
            return False
        if any(c in href for c in "\\?#"):  # a path only, as the server itself wrote it
            return False
        decoded = unquote(href)
        if not decoded.startswith("/" + login + "/") or not decoded.isprintable():
            return False
        return not any(part in (".", "..") for part in decoded.split("/"))

    async def get(self, login: str, href: str) -> Resource | None:
        if not self.owns(login, href):
            return None
        async with self.http.get(self.url(href), auth=self._auth(login), timeout=TIMEOUT) as r:
            text = await r.text()
            if r.status == 404:
                return None
            if r.status != 200:
                raise CalDavError(r.status, r.reason or "")
            return Resource(href, r.headers.get("ETag", ""), text)

    async def put(self, login: str, href: str, text: str, etag: str = "") -> None:
        if not self.owns(login, href):
            raise CalDavError(403, "not yours")
        headers = {"Content-Type": "text/calendar; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag  # a change made meanwhile elsewhere is not overwritten
        async with self.http.put(
            self.url(href),
            data=text.encode(),
            auth=self._auth(login),
            headers=headers,
            timeout=TIMEOUT,
        ) as r:
            detail = await r.text()
            if r.status not in (200, 201, 204):
                raise CalDavError(r.status, detail.strip()[:200] or r.reason or "")

    async def delete(self, login: str, href: str) -> None:
        if not self.owns(login, href):
            raise CalDavError(403, "not yours")
        async with self.http.delete(self.url(href), auth=self._auth(login), timeout=TIMEOUT) as r:
            await r.read()
            if r.status not in (200, 204, 404):
                raise CalDavError(r.status, r.reason or "")

    async def freebusy(self, login: str, request_text: str) -> bytes:
        """POST a VFREEBUSY REQUEST to the user's outbox (RFC 6638 §5)."""
        async with self.http.post(
            self.url("/" + quote(login) + "/outbox/"),
            data=request_text.encode(),
            auth=self._auth(login),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=TIMEOUT,
        ) as r:
            body = await r.read()
            if r.status != 200:
                raise CalDavError(r.status, r.reason or "")
            return body

    async def busy_details(self, payload: dict[str, object]) -> list[dict[str, str]]:
        """Busy occurrences with titles, from the CalDAV side's signed internal API."""
        body = json.dumps(payload).encode()
        async with self.http.post(
            self.url("/.visio/busy"),
            data=body,
            headers={"X-Visio-Signature": tokens.sign(self.key, body)},
            timeout=TIMEOUT,
        ) as r:
            if r.status != 200:
                raise CalDavError(r.status, r.reason or "")
            answer = await r.json()
        return [dict(b) for b in answer.get("busy", [])]


def _first_event_calendar(xml: bytes, home: str) -> str | None:
    root = ET.fromstring(xml)  # noqa: S314 - our own server's multistatus
    for response in root.iter(f"{{{DAV}}}response"):
        href = urlsplit(response.findtext(f"{{{DAV}}}href") or "").path
        if href.rstrip("/") == home.rstrip("/"):
            continue
        if response.find(f".//{{{CALDAV}}}calendar") is None:
            continue
        comps = [c.get("name") for c in response.iter(f"{{{CALDAV}}}comp")]
        if not comps or "VEVENT" in comps:
            return href if href.endswith("/") else href + "/"
    return None


def _resources(xml: bytes, with_data: bool = True) -> list[Resource]:
    root = ET.fromstring(xml)  # noqa: S314 - our own server's multistatus
    found: list[Resource] = []
    for response in root.iter(f"{{{DAV}}}response"):
        data = response.findtext(f".//{{{CALDAV}}}calendar-data") or ""
        if with_data and not data:
            continue  # 404 in a multiget: deleted meanwhile
        href = urlsplit(response.findtext(f"{{{DAV}}}href") or "").path
        found.append(Resource(href, response.findtext(f".//{{{DAV}}}getetag") or "", data))
    return found
