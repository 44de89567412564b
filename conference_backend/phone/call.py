"""One phone call, as a state machine: prompt → collect the room number → (lobby) → in the room.

A wrong number, a retired room and a number that never existed take the same
path and the same time (ANSWER_DELAY at least) and hear the same prompt. Two
retries, then the call ends politely. Failures count against the caller's
number and the source address (RateLimiter); once either is blocked the call
ends at once. `*6` mutes and unmutes; the room closing says why, then hangs up.

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
from typing import Literal

from conference_backend import schedule
from conference_backend.lobby import RESTART, Knock
from conference_backend.participant import new_participant_id
from conference_backend.phone.bridge import Bridge, MixerPool, masked_name
from conference_backend.phone.g711 import Pcm
from conference_backend.phone.leg import Leg
from conference_backend.phone.prompts import Prompts
from conference_backend.phone.ratelimit import RateLimiter
from conference_backend.rooms import LiveRoom, RoomManager
from visio_core.registry import Registry, Room
from visio_core.settings import Settings

log = logging.getLogger("visio.phone")
ATTEMPTS = 3  # the first try and two retries
MAX_DIGITS = 16
KEY_TIMEOUT = 10.0  # seconds of silence on the keypad before the number counts as given
ANSWER_DELAY = 0.3  # every answer to a number takes at least this long
STAR_WINDOW = 3.0  # "*" then "6" within this many seconds
ROOM_CLOSED = "!"  # a pseudo key: the room closed under the caller
LOBBY_REPEAT = 20.0  # seconds between two "please wait" prompts in the lobby


@dataclass
class PhoneContext:
    settings: Settings
    registry: Registry
    rooms: RoomManager
    prompts: Prompts
    limiter: RateLimiter
    mixers: MixerPool


Outcome = Literal["wrong", "waiting", "ended", "full", "open"]


@dataclass
class Lookup:
    outcome: Outcome
    row: Room | None = None
    opens_at: dt.datetime | None = None
    occurrence: str | None = None  # what RoomManager.open needs, when the room is not live
    around: dt.datetime | None = None


class Call:
    def __init__(self, ctx: PhoneContext, leg: Leg, caller: str, source: str) -> None:
        self.ctx = ctx
        self.leg = leg
        self.caller = caller[:64]
        self.source = source
        self.keys: asyncio.Queue[str] = asyncio.Queue(maxsize=32)
        self.bridge: Bridge | None = None
        self.end_reason = ""
        self.outcome = ""  # for logs and tests: what ended the call
        leg.on_key = self.key

    def key(self, key: str) -> None:
        """A key from RFC 4733 or SIP INFO; a caller typing ahead of us is bounded."""
        if self.keys.full():
            if key != ROOM_CLOSED:
                return
            self.keys.get_nowait()
        self.keys.put_nowait(key)

    def room_closed(self, reason: str) -> None:
        self.end_reason = reason
        self.key(ROOM_CLOSED)

    async def run(self) -> None:
        log.info("phone call from %s answered", self._who())
        self.leg.start_clock()
        try:
            self.outcome = await self._dial()
            log.info("phone call from %s ends: %s", self._who(), self.outcome)
        except asyncio.CancelledError:
            log.info("phone call from %s ends: hung up", self._who())
            raise
        except Exception:
            log.exception("phone call from %s failed", self._who())
        finally:
            if self.bridge is not None:
                await self.bridge.leave()
                self.bridge = None
            await self.leg.close()

    def _who(self) -> str:
        return f"…{self.caller[-2:]} ({self.source})"

    # dialling ----------------------------------------------------------------
    async def _dial(self) -> str:
        limiter, loop = self.ctx.limiter, asyncio.get_running_loop()
        prompt = "welcome"
        for attempt in range(1, ATTEMPTS + 1):
            if self._blocked():
                await self._say("blocked")
                return "blocked"
            number = await self._collect(prompt)
            started = loop.time()
            found = self._lookup(number)
            await asyncio.sleep(max(0.0, ANSWER_DELAY - (loop.time() - started)))
            if found.outcome == "wrong":
                now = loop.time()
                by_caller = limiter.failure(f"caller {self.caller}", now) if self.caller else False
                by_source = limiter.failure(f"address {self.source}", now)
                if by_caller or by_source:
                    await self._say("blocked")
                    return "blocked"
                if attempt == ATTEMPTS:
                    await self._say("goodbye")
                    return "wrong number"
                prompt = "retry"
                continue
            if found.outcome == "waiting" and found.opens_at is not None:
                await self._play(await self.ctx.prompts.opening(found.opens_at))
                return "not open yet"
            if found.outcome in ("ended", "waiting"):
                await self._say("closed")
                return "not open"
            if found.outcome == "full":
                await self._say("full")
                return "full"
            assert found.row is not None
            return await self._in_room(found)
        return "wrong number"

    def _blocked(self) -> bool:
        now = asyncio.get_running_loop().time()
        limiter = self.ctx.limiter
        return limiter.blocked(f"address {self.source}", now) or bool(
            self.caller and limiter.blocked(f"caller {self.caller}", now)
        )

    async def _collect(self, prompt: str) -> str:
        """Digits up to "#" (or a pause); the prompt plays until the first key."""
        loop = asyncio.get_running_loop()
        self.leg.stop_prompt()
        # The prompt is fetched aside: keys typed meanwhile are never kept waiting.
        fetch: asyncio.Task[Pcm] | None = asyncio.create_task(self.ctx.prompts.get(prompt))
        done = asyncio.Event()
        digits, typed = "", False
        deadline: float | None = None
        try:
            while True:
                if fetch is not None and fetch.done():
                    if typed or fetch.exception() is not None:
                        done.set()
                    else:
                        done = self.leg.play(fetch.result())
                    fetch = None
                if deadline is None and fetch is None and done.is_set():
                    deadline = loop.time() + KEY_TIMEOUT
                wait = 0.1 if deadline is None else max(0.0, deadline - loop.time())
                try:
                    key = await asyncio.wait_for(self.keys.get(), wait)
                except TimeoutError:
                    if deadline is not None and loop.time() >= deadline:
                        return digits
                    continue
                typed = True
                self.leg.stop_prompt()  # the caller types: the prompt stops
                deadline = loop.time() + KEY_TIMEOUT
                if key == "#":
                    return digits
                if key == "*":
                    digits = ""
                elif key.isdigit() and len(digits) <= MAX_DIGITS:
                    digits += key
        finally:
            if fetch is not None:
                fetch.cancel()

    def _lookup(self, number: str) -> Lookup:
        if not number.isdigit() or len(number) > MAX_DIGITS:
            return Lookup("wrong")
        row = self.ctx.registry.by_number(number)
        if row is None:
            return Lookup("wrong")
        settings = self.ctx.settings
        live = self.ctx.rooms.get(row.room_id)
        occurrence, around = None, None
        if live is None or live.closed or not live.participants:
            now = dt.datetime.now(dt.UTC)
            try:
                win = schedule.window(
                    row.event,
                    now,
                    dt.timedelta(minutes=settings.early_join_minutes),
                    dt.timedelta(minutes=settings.room_grace_minutes),
                )
            except Exception:  # an event the schedule cannot read: as for the web page
                log.exception("cannot compute the window of room %s", row.room_id)
                return Lookup("ended")
            if win.state == "waiting":
                return Lookup("waiting", opens_at=win.opens_at)
            if win.state == "ended":
                return Lookup("ended")
            occurrence, around = win.occurrence, win.start
        if live is not None and not live.closed and self._full(live):
            return Lookup("full")
        # The room is opened only when the caller goes in (_in_room): an empty live
        # room would be dropped by the manager's next check meanwhile.
        return Lookup("open", row, occurrence=occurrence, around=around)

    def _full(self, room: LiveRoom) -> bool:
        return len(room.participants) >= self.ctx.settings.room_capacity

    # in the room --------------------------------------------------------------
    async def _in_room(self, found: Lookup) -> str:
        row = found.row
        assert row is not None
        room = self.ctx.rooms.open(row, found.occurrence, found.around)
        if self._full(room):
            await self._say("full")
            return "full"
        # No await from opening the room to being in it or knocking (see _lookup).
        name = masked_name(self.caller, self.ctx.settings.language)
        pid = new_participant_id()
        marks = frozenset({f"phone:{self.caller}"})
        if schedule.lobby_enabled(row.event, row.options) or room.removals.banned(marks):
            verdict = await self._knock(room, pid, name, marks)
            if verdict != "admitted":
                return verdict
            if room.closed:
                await self._say("ended")
                return "room closed while admitted"
            while not self.keys.empty():  # keys typed while waiting mean nothing inside
                self.keys.get_nowait()
        bridge = Bridge(room, self.leg, name, self.ctx.mixers, pid=pid, marks=marks)
        bridge.participant.on_room_closed = self.room_closed
        self.bridge = bridge
        await bridge.enter()
        log.info("phone caller %s joined room %s as %s", self._who(), room.id, bridge.pid)
        await self._say("joined", wait=False)
        if row.options.get("record"):
            await self._say("recorded", wait=False)
        if row.options.get("stream_url"):
            await self._say("streamed", wait=False)
        loop = asyncio.get_running_loop()
        star_at: float | None = None
        while True:
            key = await self.keys.get()
            if key == ROOM_CLOSED and self.end_reason == "removed":
                # Out of the mix at once: the removed caller hears the prompt, not the room.
                await bridge.leave()
                self.bridge = None
                self.leg.stop_prompt()
                self.leg.start_clock()
                await self._say("removed")
                return "removed"
            if key == ROOM_CLOSED:
                self.leg.stop_prompt()
                await self._say("cancelled" if self.end_reason == "cancelled" else "ended")
                return f"room closed ({self.end_reason})"
            if key == "*":
                star_at = loop.time()
            elif key == "6" and star_at is not None and loop.time() - star_at <= STAR_WINDOW:
                star_at = None
                muted = not self.leg.muted
                await bridge.set_muted(muted)
                self.leg.stop_prompt()
                await self._say("muted" if muted else "unmuted", wait=False)
            else:
                star_at = None

    # the lobby ---------------------------------------------------------------
    async def _knock(self, room: LiveRoom, pid: str, name: str, marks: frozenset[str]) -> str:
        """Wait in the lobby: "admitted", or why not (the caller was told)."""
        loop = asyncio.get_running_loop()
        limits = self.ctx.settings.limits
        if self.ctx.rooms.cooldowns.remaining(room.id, marks, loop.time()) > 0:
            await self._say("refused")
            return "refused (cooling down)"
        if len(room.knocks) >= limits.lobby_max_knocks:
            await self._say("lobby_full")
            return "lobby full"
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
            waiting = await self.ctx.prompts.get("lobby")
            while not verdict.done():
                self.leg.stop_prompt()
                self.leg.play(waiting)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(verdict), LOBBY_REPEAT)
            self.leg.stop_prompt()
        finally:
            if room.knocks.get(pid) is knock:  # hung up while waiting: the knock goes too
                del room.knocks[pid]
                await room.broadcast({"type": "knock-resolved", "id": pid})
        result = verdict.result()
        if result == "admitted":
            return result
        if result == RESTART:
            return "backend stopping"
        said = {"refused": "refused", "full": "full", "cancelled": "cancelled"}
        await self._say(said.get(result, "ended"))
        return f"not admitted ({result})"

    # speaking -----------------------------------------------------------------
    async def _say(self, key: str, wait: bool = True) -> None:
        pcm = await self.ctx.prompts.get(key)
        done = self.leg.play(pcm)
        if wait:
            await done.wait()

    async def _play(self, pcm: Pcm) -> None:
        await self.leg.play(pcm).wait()
