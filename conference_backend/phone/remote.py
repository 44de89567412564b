"""The front's side of a call in a room: a client of the room's media worker.

The room lives in a media worker; the gateway (here, in the front) keeps the
caller's line. Once the number leads to an open room, `RoomLink` opens the
call's socket to the room's worker (`Rooms.connect`), hands over the call, then
relays: the caller's keys and decoded voice go to the worker; the worker's
prompts, clock changes and mix frames come back to the Leg. The worker says
how the call ends; a socket that closes without saying so means the worker
went away, and the caller is told the connection was lost. Messages:
docs/signaling.md ("Between the front and the media workers: phone calls").
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from conference_backend.phone.g711 import Pcm
from conference_backend.phone.leg import Leg
from conference_backend.phone.prompts import FIXED, Prompts
from visio_core import phone_wire as wire

log = logging.getLogger("visio.phone")
LOST = ("the room's worker went away", "lost")


@dataclass
class RoomSocket:
    ws: aiohttp.ClientWebSocketResponse
    where: str  # the worker's name, for the logs


class Rooms(Protocol):
    """What the gateway knows of the live rooms, wherever they run."""

    async def people(self, room_id: str) -> int:
        """Participants of the live room (0: not live), as its worker last reported."""
        ...

    async def connect(self, room_id: str) -> RoomSocket | None:
        """A call's socket to the room's worker (placing the room); None: no worker serves."""
        ...


@dataclass
class Entry:
    """What the worker needs to open the room when it is not live yet."""

    room_id: str
    occurrence: str | None
    around: dt.datetime | None


class RoomLink:
    def __init__(
        self, leg: Leg, prompts: Prompts, keys: asyncio.Queue[str], caller: str, source: str
    ) -> None:
        self.leg = leg
        self.prompts = prompts
        self.keys = keys
        self.caller = caller
        self.source = source
        self.who = f"…{caller[-2:]} ({source})"  # as the logs name callers
        self._out: asyncio.Queue[str | bytes] = asyncio.Queue()
        self._audio = 0  # voice frames in the queue

    async def run(self, rooms: Rooms, entry: Entry) -> str:
        """The call in the room, until it ends; returns the outcome (the caller was told)."""
        socket = await rooms.connect(entry.room_id)
        if socket is None:
            await self._end("lost")
            return "no media worker"
        self._send(
            {
                "type": wire.CALL,
                "caller": self.caller,
                "source": self.source,
                "occurrence": entry.occurrence,
                "around": entry.around.isoformat() if entry.around else None,
            }
        )
        self.leg.on_voice = self._voice
        tasks = [
            asyncio.create_task(self._write(socket.ws), name="phone link writer"),
            asyncio.create_task(self._keys(), name="phone link keys"),
        ]
        try:
            ending = await self._receive(socket, entry.room_id)
        finally:
            self.leg.on_voice = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await socket.ws.close()  # the worker takes the caller out of the room
        if ending is LOST:
            log.info("phone caller %s: %s (%s)", self.who, LOST[0], socket.where)
        await self._end(ending[1])
        return ending[0]

    # to the worker -----------------------------------------------------------------
    def _voice(self, pcm: Pcm) -> None:
        if self._audio >= wire.BACKLOG:
            return  # the worker is not reading: a gap in the caller's voice
        self._audio += 1
        self._out.put_nowait(wire.pcm_bytes(pcm))

    def _send(self, message: dict[str, Any]) -> None:
        self._out.put_nowait(json.dumps(message))

    async def _keys(self) -> None:
        while True:
            self._send({"type": wire.KEY, "key": await self.keys.get()})

    async def _write(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            while True:
                item = await self._out.get()
                if isinstance(item, bytes):
                    self._audio -= 1
                    await ws.send_bytes(item)
                else:
                    await ws.send_str(item)

    # from the worker ---------------------------------------------------------------
    async def _receive(self, socket: RoomSocket, room_id: str) -> tuple[str, str | None]:
        async for msg in socket.ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                if not self.leg.pacing:  # the worker's mix paces the caller's audio
                    self.leg.emit(wire.pcm_of(msg.data))
                continue
            if msg.type != aiohttp.WSMsgType.TEXT:
                continue
            try:
                data = json.loads(msg.data)
            except ValueError:
                continue
            kind = data.get("type") if isinstance(data, dict) else None
            if kind == wire.SAY:
                if data.get("cut"):
                    self.leg.stop_prompt()
                await self._play(str(data.get("prompt")))
            elif kind == wire.STOP_PROMPT:
                self.leg.stop_prompt()
            elif kind == wire.CLOCK and data.get("on"):
                self.leg.start_clock()
            elif kind == wire.CLOCK:
                await self.leg.stop_clock()
            elif kind == wire.JOINED:
                log.info(
                    "phone caller %s joined room %s on %s as %s",
                    self.who,
                    room_id,
                    socket.where,
                    data.get("id"),
                )
            elif kind == wire.END:
                said = data.get("say")
                return str(data.get("outcome", "ended"))[:200], str(said) if said else None
        return LOST

    async def _play(self, prompt: str) -> asyncio.Event:
        if prompt not in FIXED:
            log.warning("phone: unknown prompt %r asked by a media worker", prompt[:40])
            done = asyncio.Event()
            done.set()
            return done
        return self.leg.play(await self.prompts.get(prompt))

    async def _end(self, prompt: str | None) -> None:
        """The room's audio stops: the leg paces itself again and says the last word."""
        self.leg.stop_prompt()
        self.leg.start_clock()
        if prompt is not None:
            await (await self._play(prompt)).wait()
