"""The room half of one phone call, in the room's media worker: (lobby) → in the room.

The front's gateway answered the call, collected the room number and checked
the meeting's window; here the caller enters the live room (or knocks at it)
as a PhoneParticipant, and stays until the room closes, an organizer removes
them or the front hangs up. What the caller should hear is asked of the front
(`Line.say`); how the call ends is the result of `run()`: an outcome for the
logs and the prompt said before hanging up.

With the meeting's lobby on, a caller knocks like a web guest ("Téléphone …12 34")
and hears that they are waiting until someone inside lets them in: a caller
cannot prove who they are, and the number is printed on every join page. A
caller removed by the organizer hears so and is hung up; the same number then
knocks again, lobby or not (lobby.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Protocol

from visio_core import schedule
from visio_core.registry import Room
from visio_core.settings import Settings
from visio_core.tokens import new_participant_id
from visio_rooms.lobby import RESTART, Knock
from visio_rooms.phone_bridge import Bridge, Line, MixerPool, masked_name
from visio_rooms.rooms import LiveRoom, RoomManager

log = logging.getLogger("visio.phone")
STAR_WINDOW = 3.0  # "*" then "6" within this many seconds
ROOM_CLOSED = "!"  # a pseudo key: the room closed under the caller
LOBBY_REPEAT = 20.0  # seconds between two "please wait" prompts in the lobby

Ending = tuple[str, str | None]  # (outcome for the logs, prompt said before hanging up)


class CallerLine(Line, Protocol):
    """The caller's line as the room half uses it: audio (bridge.Line) and prompts."""

    def say(self, prompt: str, cut: bool = False) -> None: ...

    def stop_prompt(self) -> None: ...

    def start_clock(self) -> None: ...

    def joined(self, pid: str) -> None: ...


@dataclass
class PhoneRooms:
    settings: Settings
    rooms: RoomManager
    mixers: MixerPool


@dataclass
class CallStart:
    caller: str
    source: str  # the caller's address, for the logs
    occurrence: str | None  # what RoomManager.open needs when the room is not live
    around: dt.datetime | None


class RoomCall:
    def __init__(self, ctx: PhoneRooms, line: CallerLine, row: Room, start: CallStart) -> None:
        self.ctx = ctx
        self.line = line
        self.row = row
        self.start = start
        self.caller = start.caller[:64]
        self.keys: asyncio.Queue[str] = asyncio.Queue(maxsize=32)
        self.bridge: Bridge | None = None
        self.end_reason = ""

    def key(self, key: str) -> None:
        """A key from the caller; a caller typing ahead of us is bounded."""
        if self.keys.full():
            if key != ROOM_CLOSED:
                return
            self.keys.get_nowait()
        self.keys.put_nowait(key)

    def room_closed(self, reason: str) -> None:
        self.end_reason = reason
        self.key(ROOM_CLOSED)

    def _who(self) -> str:
        return f"…{self.caller[-2:]} ({self.start.source})"

    async def run(self) -> Ending:
        try:
            return await self._in_room()
        finally:
            if self.bridge is not None:
                await self.bridge.leave()
                self.bridge = None

    def _full(self, room: LiveRoom) -> bool:
        return len(room.participants) >= self.ctx.settings.room_capacity

    # in the room --------------------------------------------------------------
    async def _in_room(self) -> Ending:
        row = self.row
        room = self.ctx.rooms.open(row, self.start.occurrence, self.start.around)
        if self._full(room):
            return "full", "full"
        # No await from opening the room to being in it or knocking: an empty live
        # room would be dropped by the manager's next check meanwhile.
        name = masked_name(self.caller, self.ctx.settings.language)
        pid = new_participant_id()
        marks = frozenset({f"phone:{self.caller}"})
        if schedule.lobby_enabled(row.event, row.options) or room.removals.banned(marks):
            ending = await self._knock(room, pid, name, marks)
            if ending is not None:
                return ending
            if room.closed:
                return "room closed while admitted", "ended"
            while not self.keys.empty():  # keys typed while waiting mean nothing inside
                self.keys.get_nowait()
        bridge = Bridge(room, self.line, name, self.ctx.mixers, pid=pid, marks=marks)
        bridge.participant.on_room_closed = self.room_closed
        self.bridge = bridge
        await bridge.enter()
        log.info("phone caller %s in room %s as %s", self._who(), room.id, bridge.pid)
        self.line.joined(bridge.pid)
        self.line.say("joined")
        if row.options.get("record"):
            self.line.say("recorded")
        if row.options.get("stream_url"):
            self.line.say("streamed")
        loop = asyncio.get_running_loop()
        star_at: float | None = None
        while True:
            key = await self.keys.get()
            if key == ROOM_CLOSED and self.end_reason == "removed":
                # Out of the mix at once: the removed caller hears the prompt, not the room.
                await bridge.leave()
                self.bridge = None
                return "removed", "removed"
            if key == ROOM_CLOSED:
                said = "cancelled" if self.end_reason == "cancelled" else "ended"
                return f"room closed ({self.end_reason})", said
            if key == "*":
                star_at = loop.time()
            elif key == "6" and star_at is not None and loop.time() - star_at <= STAR_WINDOW:
                star_at = None
                muted = not self.line.muted
                await bridge.set_muted(muted)
                self.line.say("muted" if muted else "unmuted", cut=True)
            else:
                star_at = None

    # the lobby ---------------------------------------------------------------
    async def _knock(
        self, room: LiveRoom, pid: str, name: str, marks: frozenset[str]
    ) -> Ending | None:
        """Wait in the lobby: None once admitted, else how the call ends."""
        loop = asyncio.get_running_loop()
        limits = self.ctx.settings.limits
        if self.ctx.rooms.cooldowns.remaining(room.id, marks, loop.time()) > 0:
            return "refused (cooling down)", "refused"
        if len(room.knocks) >= limits.lobby_max_knocks:
            return "lobby full", "lobby_full"
        verdict: asyncio.Future[str] = loop.create_future()

        async def admit() -> None:
            if not verdict.done():
                verdict.set_result("admitted")

        async def dismiss(reason: str) -> None:
            if not verdict.done():
                verdict.set_result(reason)

        knock = Knock(pid, name, admit, dismiss, marks=marks, cooldown=marks, phone=True)
        room.knocks[pid] = knock
        log.info("phone caller %s knocks at room %s as %s", self._who(), room.id, pid)
        try:
            await room.broadcast({"type": "knock", **knock.public()})
            while not verdict.done():
                self.line.say("lobby", cut=True)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(verdict), LOBBY_REPEAT)
            self.line.stop_prompt()
        finally:
            if room.knocks.get(pid) is knock:  # hung up while waiting: the knock goes too
                del room.knocks[pid]
                await room.broadcast({"type": "knock-resolved", "id": pid})
        result = verdict.result()
        if result == "admitted":
            return None
        if result == RESTART:
            return "backend stopping", None
        said = {"refused": "refused", "full": "full", "cancelled": "cancelled"}
        return f"not admitted ({result})", said.get(result, "ended")
