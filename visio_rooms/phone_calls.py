"""Phone calls in a media worker: the front's gateway hands each call's room half here.

`GET /internal/phone/{room_id}` is a WebSocket on the worker's Unix socket (only
the front reaches it), one per call in one of this worker's rooms. The front
sends the call (caller, occurrence), the caller's keys and voice; the worker
runs the room half (phone_room.py) and sends back the prompts to say, who
paces the caller's audio, the room's mix every 20 ms, and how the call ends.
docs/signaling.md ("Between the front and the media workers: phone calls")
describes the messages; visio_core/phone_wire.py names them.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from visio_core import phone_wire as wire
from visio_core.phone_wire import Pcm
from visio_rooms import keys
from visio_rooms.phone_bridge import MixerPool
from visio_rooms.phone_mixer import PcmQueue
from visio_rooms.phone_room import CallStart, Ending, PhoneRooms, RoomCall

log = logging.getLogger("visio.phone")
START_TIMEOUT = 10.0  # s for the front's first message
FLUSH_TIMEOUT = 5.0  # s to write what is queued before the socket closes
KEYS = frozenset("0123456789*#")
PHONE = web.AppKey("phone_rooms", PhoneRooms)
SOCKETS: web.AppKey[set[web.WebSocketResponse]] = web.AppKey("phone_sockets")


class RemoteLine:
    """The caller's line as the room sees it: the call's socket to the front.

    Everything written goes through one queue and one writer task, in order
    (the mixer's tick cannot wait for a socket); audio frames beyond
    wire.BACKLOG are dropped rather than delayed.
    """

    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.muted = False
        self.on_voice: Callable[[Pcm], None] | None = None
        self.voice = PcmQueue()
        self._out: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._audio = 0  # audio frames in the queue
        self._writer = asyncio.create_task(self._write(), name="phone line writer")

    # from the front ----------------------------------------------------------
    def heard(self, data: bytes) -> None:
        pcm = wire.pcm_of(data)
        if pcm is not None and self.on_voice is not None:
            self.on_voice(pcm)

    # the mixer and the bridge (bridge.Line) ------------------------------------
    def queue_voice(self, pcm: Pcm) -> None:
        self.voice.push(pcm)

    def clear_voice(self) -> None:
        self.voice.clear()

    def take(self) -> Pcm | None:
        return self.voice.take()

    def emit(self, mix: Pcm | None) -> None:
        if self._audio >= wire.BACKLOG:
            return  # the front is not reading: its caller hears a gap, not a delay
        self._audio += 1
        self._out.put_nowait(wire.pcm_bytes(mix))

    async def stop_clock(self) -> None:
        self.send({"type": wire.CLOCK, "on": False})  # the mix paces the caller from now on

    def start_clock(self) -> None:
        self.send({"type": wire.CLOCK, "on": True})

    # the room half (phone_room.CallerLine) -------------------------------------
    def say(self, prompt: str, cut: bool = False) -> None:
        self.send({"type": wire.SAY, "prompt": prompt, "cut": cut})

    def stop_prompt(self) -> None:
        self.send({"type": wire.STOP_PROMPT})

    def joined(self, pid: str) -> None:
        self.send({"type": wire.JOINED, "id": pid})

    def send(self, message: dict[str, Any]) -> None:
        self._out.put_nowait(json.dumps(message))

    # writing ---------------------------------------------------------------------
    async def _write(self) -> None:
        while (item := await self._out.get()) is not None:
            try:
                if isinstance(item, bytes):
                    self._audio -= 1
                    await self.ws.send_bytes(item)
                else:
                    await self.ws.send_str(item)
            except (ConnectionError, RuntimeError):
                return  # the front went away: the handler notices its socket closed

    async def finish(self, ending: Ending) -> None:
        """Say how the call ends, after everything queued before."""
        outcome, prompt = ending
        self.send({"type": wire.END, "outcome": outcome, "say": prompt})
        self._out.put_nowait(None)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._writer), FLUSH_TIMEOUT)

    async def close(self) -> None:
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)


def _start(message: Any) -> CallStart | None:
    if not isinstance(message, dict) or message.get("type") != wire.CALL:
        return None
    around = message.get("around")
    try:
        when = dt.datetime.fromisoformat(around) if isinstance(around, str) else None
    except ValueError:
        return None
    occurrence = message.get("occurrence")
    return CallStart(
        caller=str(message.get("caller", ""))[:64],
        source=str(message.get("source", ""))[:64],
        occurrence=occurrence if isinstance(occurrence, str) else None,
        around=when,
    )


async def _read(ws: web.WebSocketResponse, line: RemoteLine, call: RoomCall) -> None:
    """The front's side of the call until it closes: the caller's voice and keys."""
    async for msg in ws:
        if msg.type == WSMsgType.BINARY:
            line.heard(msg.data)
        elif msg.type == WSMsgType.TEXT:
            with contextlib.suppress(ValueError):
                data = json.loads(msg.data)
                if isinstance(data, dict) and data.get("type") == wire.KEY:
                    key = str(data.get("key", ""))
                    if key in KEYS and len(key) == 1:
                        call.key(key)


async def phone_call(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["room_id"]
    ws = web.WebSocketResponse(heartbeat=wire.HEARTBEAT, max_msg_size=wire.MAX_MESSAGE)
    await ws.prepare(request)
    sockets = request.app[SOCKETS]
    sockets.add(ws)
    try:
        try:
            first = await ws.receive(timeout=START_TIMEOUT)
            start = _start(json.loads(first.data)) if first.type == WSMsgType.TEXT else None
        except (TimeoutError, ValueError):
            start = None
        if start is None:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no call")
            return ws
        line = RemoteLine(ws)
        try:
            await _serve(request.app, ws, line, room_id, start)
        finally:
            await line.close()
        return ws
    finally:
        sockets.discard(ws)
        await ws.close()


async def _serve(
    app: web.Application,
    ws: web.WebSocketResponse,
    line: RemoteLine,
    room_id: str,
    start: CallStart,
) -> None:
    row = app[keys.REGISTRY].by_id(room_id)
    if row is None:  # deleted since the front looked the number up
        await line.finish(("not open", "closed"))
        return
    call = RoomCall(app[PHONE], line, row, start)
    running = asyncio.create_task(call.run(), name=f"phone room call {room_id}")
    reading = asyncio.create_task(_read(ws, line, call), name=f"phone room line {room_id}")
    try:
        await asyncio.wait({running, reading}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            try:
                ending = running.result()
            except Exception:
                log.exception("phone call in room %s failed", room_id)
                ending = ("failed", "ended")
            await line.finish(ending)
    finally:
        for task in (running, reading):
            task.cancel()  # the front hung up: the caller leaves the room (call.run)
        await asyncio.gather(running, reading, return_exceptions=True)


def setup(app: web.Application) -> None:
    """Call after the rooms' cleanup context (the calls end before the rooms)."""
    app[SOCKETS] = set()

    async def phone(app: web.Application) -> AsyncIterator[None]:
        mixers = MixerPool()
        app[PHONE] = PhoneRooms(app[keys.SETTINGS], app[keys.ROOMS], mixers)
        yield
        await mixers.stop()

    async def hang_up(app: web.Application) -> None:
        # The front hears the socket close without an end: it tells its callers the
        # connection was lost and hangs up (nobody else can bring them back).
        sockets: set[web.WebSocketResponse] = app[SOCKETS]
        for ws in list(sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restart")

    app.cleanup_ctx.append(phone)
    app.on_shutdown.append(hang_up)
    app.router.add_get(wire.PATH, phone_call)
