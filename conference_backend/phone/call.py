"""One phone call, as a state machine: prompt → collect the room number → in the room.

A wrong number, a retired room and a number that never existed take the same
path and the same time (ANSWER_DELAY at least) and hear the same prompt. Two
retries, then the call ends politely. Failures count against the caller's
number and the source address (RateLimiter); once either is blocked the call
ends at once.

This runs in the front, with the line (leg.py) and the registry. The room
itself lives in a media worker: once the number leads to an open room, the
call is handed to the room's worker (remote.py), which runs its room half
(visio_rooms/phone_room.py: the lobby, `*6` to mute, removal, the room
closing) and says how the call ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Literal

from conference_backend.phone.g711 import Pcm
from conference_backend.phone.leg import Leg
from conference_backend.phone.prompts import Prompts
from conference_backend.phone.ratelimit import RateLimiter
from conference_backend.phone.remote import Entry, RoomLink, Rooms
from visio_core import schedule
from visio_core.registry import Registry, Room
from visio_core.settings import Settings

log = logging.getLogger("visio.phone")
ATTEMPTS = 3  # the first try and two retries
MAX_DIGITS = 16
KEY_TIMEOUT = 10.0  # seconds of silence on the keypad before the number counts as given
ANSWER_DELAY = 0.3  # every answer to a number takes at least this long


@dataclass
class PhoneContext:
    settings: Settings
    registry: Registry
    rooms: Rooms
    prompts: Prompts
    limiter: RateLimiter


Outcome = Literal["wrong", "waiting", "ended", "full", "open"]


@dataclass
class Lookup:
    outcome: Outcome
    row: Room | None = None
    opens_at: dt.datetime | None = None
    occurrence: str | None = None  # what the worker needs to open the room, if not live
    around: dt.datetime | None = None


class Call:
    def __init__(self, ctx: PhoneContext, leg: Leg, caller: str, source: str) -> None:
        self.ctx = ctx
        self.leg = leg
        self.caller = caller[:64]
        self.source = source
        self.keys: asyncio.Queue[str] = asyncio.Queue(maxsize=32)
        self.outcome = ""  # for logs and tests: what ended the call
        leg.on_key = self.key

    def key(self, key: str) -> None:
        """A key from RFC 4733 or SIP INFO; a caller typing ahead of us is bounded."""
        if not self.keys.full():
            self.keys.put_nowait(key)

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
            found = await self._lookup(number)
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
            link = RoomLink(self.leg, self.ctx.prompts, self.keys, self.caller, self.source)
            entry = Entry(found.row.room_id, found.occurrence, found.around)
            return await link.run(self.ctx.rooms, entry)
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

    async def _lookup(self, number: str) -> Lookup:
        if not number.isdigit() or len(number) > MAX_DIGITS:
            return Lookup("wrong")
        row = self.ctx.registry.by_number(number)
        if row is None:
            return Lookup("wrong")
        settings = self.ctx.settings
        people = await self.ctx.rooms.people(row.room_id)  # 0: not live (the worker's last report)
        occurrence, around = None, None
        if not people:  # while anyone is inside, the room takes people however late
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
        if people >= settings.room_capacity:
            return Lookup("full")
        # The room is opened only when the caller goes in, by its worker: an empty
        # live room would be dropped by the worker's next check meanwhile.
        return Lookup("open", row, occurrence=occurrence, around=around)

    # speaking -----------------------------------------------------------------
    async def _say(self, key: str) -> None:
        await self._play(await self.ctx.prompts.get(key))

    async def _play(self, pcm: Pcm) -> None:
        await self.leg.play(pcm).wait()
