"""Plain signalling clients (aiohttp WebSockets, no media) against the real stack.

Each client can come from its own loopback address (127.0.0.x), so per-address
limits are met as a server would see distinct people. Meetings are booked by
PUT into a real user's calendar, as everywhere else.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.conftest import DavUser
from tests.support import ics
from visio_core import tokens

LOBBY = ""  # the default: the lobby is on
NO_LOBBY = "X-VISIO-LOBBY:FALSE"


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def book(
    user: DavUser,
    href: str,
    *,
    extra: str = LOBBY,
    starts_in: dt.timedelta = dt.timedelta(minutes=-5),
    attendees: tuple[str, ...] = (),
) -> tuple[str, str]:
    """PUT a meeting; (join link, room id)."""
    start = dt.datetime.now(dt.UTC) + starts_in
    lines = [extra] if extra else []
    lines += [f"ATTENDEE;CN=Invitee;RSVP=TRUE:mailto:{a}" for a in attendees]
    body = ics.event(
        start=_stamp(start),
        end=_stamp(start + dt.timedelta(hours=1)),
        tz="UTC",
        categories="Visio",
        extra="\n".join(lines),
    )
    r = user.put(href, body)
    assert r.status_code in (201, 204), r.text
    stored = user.get(href).text
    room_id = str(ics.vevents(stored)[0]["X-VISIO-ROOM"])
    return ics.join_link(stored), room_id


def personal_link(data_dir: Path, web_url: str, room_id: str, address: str) -> str:
    """The invitee's link, as their invitation carries it (derived under the server key)."""
    key = (data_dir / "secret.key").read_bytes()
    return web_url.rstrip("/") + "/j/" + tokens.attendee_token(key, room_id, address)


def socket_url(link: str) -> str:
    return link.replace("http://", "ws://", 1).replace("/j/", "/ws/", 1)


class Client:
    """One signalling socket; every message received is kept in order."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.http = http
        self.ws = ws
        self.received: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.close_code: int | None = None

    @classmethod
    async def open(
        cls, link: str, source: str = "127.0.0.1", headers: dict[str, str] | None = None
    ) -> Client:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))
        try:
            ws = await http.ws_connect(socket_url(link), autoping=True, headers=headers)
        except BaseException:
            await http.close()
            raise
        return cls(http, ws)

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.received.append(json.loads(message.data))
                self._arrived.set()
        self.close_code = self.ws.close_code
        self._arrived.set()

    async def send(self, message: dict[str, Any]) -> None:
        await self.ws.send_str(json.dumps(message))

    def of(self, *types: str) -> list[dict[str, Any]]:
        return [m for m in self.received if m.get("type") in types]

    async def wait(self, predicate: Any, timeout: float = 20.0) -> Any:
        """Wait until predicate(self) is truthy; returns its value."""
        async with asyncio.timeout(timeout):
            while True:
                value = predicate(self)
                if value:
                    return value
                self._arrived.clear()
                value = predicate(self)
                if value:
                    return value
                await self._arrived.wait()

    async def next(self, *types: str, after: int = 0, timeout: float = 20.0) -> dict[str, Any]:
        """The first message of `types` received at index `after` or later."""

        def found(c: Client) -> dict[str, Any] | None:
            return next((m for m in c.received[after:] if m.get("type") in types), None)

        result: dict[str, Any] = await self.wait(found, timeout)
        return result

    async def join(self, timeout: float = 20.0, **identity: Any) -> dict[str, Any]:
        mark = len(self.received)
        await self.send({"type": "join", **identity})
        return await self.next(
            "joined", "lobby", "waiting", "closed", "error", after=mark, timeout=timeout
        )

    async def closed(self, timeout: float = 20.0) -> int | None:
        await asyncio.wait_for(asyncio.shield(self._reader), timeout)
        return self.close_code

    async def close(self) -> None:
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self.ws.close()
        await self.http.close()
