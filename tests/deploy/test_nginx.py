"""The shipped reverse proxy (deploy/nginx/visio.conf) in front of a real stack.

A real nginx (Debian's) runs the shipped file with its ports, node addresses,
names, certificate and log paths rewritten (tests/deploy/nginx.py), over HTTPS
with a certificate made by `openssl req -x509`. The stack's VISIO_PUBLIC_URL is
nginx's address, as in production, so the links written into events point at
nginx. Everything is reached as a user would: a calendar app on the CalDAV host,
the portal and the join link over HTTPS, the room's WebSocket over wss://.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import shutil
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import requests

from tests.deploy.nginx import (
    CALDAV_HOST,
    NGINX,
    PORTAL_HOST,
    SHIPPED,
    Certificate,
    Nginx,
    local_paths,
    render_site,
    self_signed,
)
from tests.support import ics
from tests.support.aio import run
from tests.support.stack import Stack, free_port, wait_for

PASSWORD = "correct horse battery"
TIMEOUT = 60


@dataclass
class Deployment:
    stack: Stack
    nginx: Nginx
    cert: Certificate
    http_port: int
    https_port: int

    @property
    def portal(self) -> str:
        return f"https://{PORTAL_HOST}:{self.https_port}/"

    @property
    def caldav(self) -> str:
        return f"https://{CALDAV_HOST}:{self.https_port}/"

    def web(self) -> requests.Session:
        """A browser-like session that trusts the deployment's certificate."""
        session = requests.Session()
        # Not the environment's: REQUESTS_CA_BUNDLE would override `verify` (and a proxy
        # variable would send loopback requests elsewhere).
        session.trust_env = False
        session.verify = str(self.cert.cert)
        return session


def deploy(folder: Path, cert: Certificate, stacks: list[Stack], ports: tuple[int, int]) -> Nginx:
    """nginx running the shipped file, one upstream server line per stack."""
    http_port, https_port = ports
    site = render_site(
        SHIPPED.read_text(),
        folder,
        cert,
        http_port=http_port,
        https_port=https_port,
        nodes=[f"127.0.0.1:{s.web_port}" for s in stacks],
        caldav=f"127.0.0.1:{stacks[0].caldav_port}",
    )
    return Nginx(folder, site, https_port).start()


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    assert shutil.which(NGINX), "run scripts/system-deps.sh (Debian package nginx)"
    return self_signed(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cert: Certificate) -> Iterator[Deployment]:
    http_port, https_port = free_port(), free_port()
    public = f"https://{PORTAL_HOST}:{https_port}"
    stack = Stack(
        tmp_path_factory.mktemp("node"),
        extra_env={
            "VISIO_PUBLIC_URL": public,
            "VISIO_TRUSTED_PROXIES": "127.0.0.1/32",  # nginx's address, as on every node
            "VISIO_SOCKETS_PER_ADDRESS": "1",  # one per client address: counted per client
        },
    ).start()
    try:
        proxy = deploy(tmp_path_factory.mktemp("nginx"), cert, [stack], (http_port, https_port))
        try:
            yield Deployment(stack, proxy, cert, http_port, https_port)
        finally:
            proxy.stop()
    finally:
        stack.stop()


@dataclass
class Meeting:
    login: str
    link: str

    @property
    def token(self) -> str:
        return self.link.rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def meeting(site: Deployment) -> Meeting:
    """A meeting booked the way a calendar app books it: on the CalDAV host, through nginx."""
    login = "d" + uuid.uuid4().hex[:8]
    site.stack.add_user(login, PASSWORD)
    dav = site.web()
    dav.auth = (login, PASSWORD)
    calendar = f"{site.caldav}{login}/calendar/"
    assert dav.request("MKCALENDAR", calendar, timeout=TIMEOUT).status_code == 201
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    body = ics.event(
        summary="Conseil d'administration",
        start=start.strftime("%Y%m%dT%H%M%S"),
        end=(start + dt.timedelta(hours=1)).strftime("%Y%m%dT%H%M%S"),
        tz="UTC",
        extra="X-VISIO-LOBBY:FALSE",
    )
    put = dav.put(
        calendar + "ca.ics",
        data=body.encode(),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        timeout=TIMEOUT,
    )
    assert put.status_code in (201, 204), put.text
    stored = dav.get(calendar + "ca.ics", timeout=TIMEOUT)
    assert stored.status_code == 200
    return Meeting(login, ics.join_link(stored.text))


def test_the_shipped_file_passes_nginx_t_with_only_its_files_moved(
    tmp_path: Path, cert: Certificate
) -> None:
    """Ports 80/443, IPv6, node addresses and names exactly as shipped."""
    checked = Nginx(tmp_path, local_paths(SHIPPED.read_text(), tmp_path, cert)).check()
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr and "test is successful" in checked.stderr


def test_plain_http_is_redirected_to_https(site: Deployment) -> None:
    r = site.web().get(
        f"http://{PORTAL_HOST}:{site.http_port}/login?lang=en",
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://{PORTAL_HOST}/login?lang=en"


def test_the_portal_signs_in_over_https(site: Deployment, meeting: Meeting) -> None:
    web = site.web()
    page = web.get(site.portal + "login", timeout=TIMEOUT)
    assert page.status_code == 200
    assert 'name="password"' in page.text
    assert "max-age=" in page.headers["Strict-Transport-Security"]
    # The public URL is https: the session cookie is only ever sent over TLS.
    assert "secure" in page.headers["Set-Cookie"].lower()
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    signed = web.post(
        site.portal + "login",
        data={"csrf": csrf.group(1), "login": meeting.login, "password": PASSWORD},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert signed.status_code == 303 and signed.headers["Location"] == "/", signed.text
    home = web.get(site.portal, timeout=TIMEOUT)
    assert home.status_code == 200
    assert 'action="/logout"' in home.text and meeting.login.title() in home.text


def test_calendar_discovery_on_the_portal_name_leads_to_the_caldav_host(
    site: Deployment,
) -> None:
    web = site.web()
    r = web.get(site.portal + ".well-known/caldav", allow_redirects=False, timeout=TIMEOUT)
    assert r.status_code == 301
    assert r.headers["Location"] == f"https://{CALDAV_HOST}/"
    # The CalDAV host is Radicale (node A's only): it answers WebDAV, the portal does not.
    dav = web.options(site.caldav, timeout=TIMEOUT)
    assert "calendar-access" in dav.headers.get("DAV", "")
    assert "DAV" not in web.options(site.portal, timeout=TIMEOUT).headers


def test_the_link_written_into_the_event_opens_through_nginx(
    site: Deployment, meeting: Meeting
) -> None:
    assert meeting.link.startswith(site.portal + "j/"), meeting.link
    page = site.web().get(meeting.link, timeout=TIMEOUT)
    assert page.status_code == 200
    assert 'data-room-state="prejoin"' in page.text
    assert "Conseil d&#39;administration" in page.text or "Conseil d'administration" in page.text
    # The page may open its WebSocket on the public (nginx) address, over TLS.
    assert f"wss://{PORTAL_HOST}:{site.https_port}" in page.headers["Content-Security-Policy"]


def _tls(cert: Certificate) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert.cert))


async def _socket(
    site: Deployment, token: str, source: str
) -> tuple[aiohttp.ClientSession, aiohttp.ClientWebSocketResponse]:
    """A room WebSocket through nginx, from one loopback address (one client)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), ssl=_tls(site.cert))
    http = aiohttp.ClientSession(connector=connector)
    try:
        url = f"wss://{PORTAL_HOST}:{site.https_port}/ws/{token}"
        return http, await http.ws_connect(url, autoping=True)
    except BaseException:
        await http.close()
        raise


async def _answer(ws: aiohttp.ClientWebSocketResponse, *types: str) -> dict[str, Any]:
    """The first message of `types` the server sends."""
    async with asyncio.timeout(30):
        while True:
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            data: dict[str, Any] = json.loads(msg.data)
            if data.get("type") in types:
                return data


def test_the_room_websocket_is_upgraded_through_nginx(site: Deployment, meeting: Meeting) -> None:
    async def scenario() -> dict[str, Any]:
        http, ws = await _socket(site, meeting.token, "127.0.0.1")
        try:
            await ws.send_str(json.dumps({"type": "join", "name": "Ana"}))
            joined = await _answer(ws, "joined", "lobby", "waiting", "closed", "error")
            await ws.send_str(json.dumps({"type": "ping"}))  # and messages flow both ways
            pong = await _answer(ws, "pong")
            return {"joined": joined, "pong": pong}
        finally:
            await ws.close()
            await http.close()

    seen = run(scenario())
    assert seen["joined"]["type"] == "joined", seen
    assert seen["joined"]["you"]["name"] == "Ana"
    assert seen["pong"] == {"type": "pong"}


def test_each_client_is_counted_by_its_own_address_behind_nginx(
    site: Deployment, meeting: Meeting
) -> None:
    """VISIO_SOCKETS_PER_ADDRESS=1: the backend sees each client's address (from
    X-Forwarded-For, nginx being trusted), not nginx's for everyone."""

    async def scenario() -> tuple[int, bool]:
        first = await _socket(site, meeting.token, "127.0.0.3")
        try:
            try:
                second = await _socket(site, meeting.token, "127.0.0.3")
            except aiohttp.WSServerHandshakeError as e:
                refused = e.status
            else:
                await second[1].close()
                await second[0].close()
                refused = 101
            other = await _socket(site, meeting.token, "127.0.0.4")
            opened = not other[1].closed
            await other[1].close()
            await other[0].close()
            return refused, opened
        finally:
            await first[1].close()
            await first[0].close()

    refused, opened = run(scenario())
    assert refused == 429  # the same client's second socket
    assert opened  # another client, through the same nginx


def test_two_upstream_servers_both_answer(
    site: Deployment, cert: Certificate, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """One server line per node, and requests spread over them (no stickiness)."""
    other = Stack(tmp_path_factory.mktemp("node-b")).start()
    try:
        ports = (free_port(), free_port())
        proxy = deploy(tmp_path_factory.mktemp("nginx-2"), cert, [site.stack, other], ports)
        try:
            web = site.web()
            # Each node's /caldav page names the CalDAV address that node was given.
            pages = [
                web.get(f"https://{PORTAL_HOST}:{ports[1]}/caldav", timeout=TIMEOUT)
                for _ in range(6)
            ]
            assert all(p.status_code == 200 for p in pages)
            nodes = (site.stack, other)
            named = {s.caldav_url for s in nodes for p in pages if s.caldav_url in p.text}
            assert named == {site.stack.caldav_url, other.caldav_url}
            answered = wait_for(lambda: set(proxy.upstreams()) or None, 10, what="access log")
            assert answered == {f"127.0.0.1:{site.stack.web_port}", f"127.0.0.1:{other.web_port}"}
        finally:
            proxy.stop()
    finally:
        other.stop()
