"""Live rooms: who is in, what each one receives, the speaker, and closing them.

A LiveRoom exists while someone is in it or knocking; it is made again from the
registry row on the next join (after a backend restart too). `RoomManager.watch`
re-reads the registry every POLL_SECONDS so that a deleted event, a removed
category or a cancelled occurrence empties the room within seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import WSCloseCode

from visio_core import schedule
from visio_core.addresses import AddressSockets
from visio_core.categories import RoomKind
from visio_core.registry import Registry, Room
from visio_rooms import subscriptions
from visio_rooms.lobby import RESTART, Cooldowns, Knock, Removals
from visio_rooms.participant import Member, Participant, PhoneParticipant
from visio_rooms.sfu.audiogate import AudioGate
from visio_rooms.sfu.forwarding import Publication
from visio_rooms.sfu.selection import CAMERA_LOW, Dynacast, layer_of
from visio_rooms.sfu.speaker import SpeakerDetector

log = logging.getLogger("visio.room")
POLL_SECONDS = 2.0
ENTRY_GRACE = 10.0
TICK_SECONDS = 0.2
REVIEW_SECONDS = 1.0
CHAT_HISTORY = 200
CLOSED_CODE = 4000  # "the room is closed": the page does not try again


__all__ = ["CLOSED_CODE", "Knock", "LiveRoom", "RoomManager"]


class LiveRoom:
    def __init__(
        self,
        row: Room,
        occurrence: str | None,
        around: dt.datetime | None,
        removals: Removals | None = None,
        trust_bwe: bool = True,
    ) -> None:
        self.row = row
        self.occurrence = occurrence  # RECURRENCE-ID key of the meeting held, if known
        self.around = around or dt.datetime.now(dt.UTC)
        self.participants: dict[str, Member] = {}
        self.knocks: dict[str, Knock] = {}
        # Who was removed: kept by the RoomManager past this object (see lobby.py).
        self.removals = removals if removals is not None else Removals()
        self.chat: deque[dict[str, Any]] = deque(maxlen=CHAT_HISTORY)
        self.detector = SpeakerDetector()
        self.gate = AudioGate()  # whose voice the pages receive now (the 4 loudest at most)
        self.dynacast = Dynacast()
        self.trust_bwe = trust_bwe  # False: views alone choose layers (subscriptions.decide)
        self.speaker: str | None = None
        self.speaking: set[str] = set()
        self.screen_owner: str | None = None
        self.closed: str | None = None
        self._dirty: set[str] = set()
        self._routing: dict[str, asyncio.Task[None]] = {}
        self._ticker: asyncio.Task[None] | None = None
        self._review_at = 0.0
        # Refreshed by each RoomManager.open: an entrant between open and add keeps it.
        self.touched = time.monotonic()
        # Called whenever who is in or what they publish changes (the phone mix follows).
        self.watchers: list[Callable[[], None]] = []

    @property
    def id(self) -> str:
        return self.row.room_id

    @property
    def video(self) -> bool:
        return self.row.kind is RoomKind.VIDEO

    @property
    def empty(self) -> bool:
        return not self.participants and not self.knocks

    # membership ---------------------------------------------------------
    async def add(self, p: Member) -> None:
        old = self.participants.get(p.id)
        if old is not None:  # the same person again (reload): the new socket wins
            await self.remove(old)
            if isinstance(old, Participant):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await old.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"replaced")
        self.participants[p.id] = p
        log.info("room %s: %s in (%d people)", self.id, p.id, len(self.participants))
        await self.broadcast({"type": "participant-joined", "participant": p.public()}, p.id)
        if self._ticker is None:
            self._ticker = asyncio.create_task(self._tick(), name=f"speaker {self.id}")
        self.reroute()

    async def remove(self, p: Member) -> None:
        if self.participants.get(p.id) is not p:
            return
        del self.participants[p.id]
        log.info("room %s: %s out (%d people)", self.id, p.id, len(self.participants))
        task = self._routing.pop(p.id, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        self.detector.remove(p.id)
        self.gate.remove(p.id)
        self.dynacast.forget(p.id)
        if self.screen_owner == p.id:
            self.screen_owner = None
        await p.close()
        await self.broadcast({"type": "participant-left", "id": p.id})
        if not self.participants and self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        self.reroute()

    async def expel(self, p: Member, until: float) -> None:
        """The organizer's "remove": told (a page) or said (a caller), then out; the
        person's marks knock from now on (lobby.py)."""
        self.removals.ban(p.marks, until)
        if isinstance(p, Participant):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await p.ws.send_json({"type": "closed", "reason": "removed"})
                await p.ws.close(code=CLOSED_CODE, message=b"removed")
        else:
            p.room_closed("removed")  # the gateway says so, then hangs up
        await self.remove(p)

    async def broadcast(self, message: dict[str, Any], skip: str | None = None) -> None:
        await asyncio.gather(
            *(p.send(message) for p in list(self.participants.values()) if p.id != skip)
        )

    def level_sink(self, pid: str) -> Callable[[int], None]:
        loop = asyncio.get_running_loop()

        def sink(level: int) -> None:
            now = loop.time()
            self.detector.add_level(pid, level, now)  # the speaker choice hears everyone
            self.gate.level(pid, level, now)

        return sink

    def published(self, pub: Publication) -> None:
        if pub.source == "microphone":
            loop = asyncio.get_running_loop()
            owner = pub.owner
            pub.gate = lambda: self.gate.audible(owner, loop.time())
        if pub.source == CAMERA_LOW:
            self.dynacast.forget(pub.owner)  # a new page, or a reload: tell it afresh
        self.reroute(skip=pub.owner)

    async def set_screen(self, p: Member, on: bool) -> None:
        pub = p.publications.get("screen")
        if pub is not None:
            pub.active = on
        if on and pub is not None:
            self.screen_owner = p.id
        elif self.screen_owner == p.id:
            self.screen_owner = None
        await self.broadcast({"type": "screen", "id": self.screen_owner})
        self.reroute()

    # routing ------------------------------------------------------------
    def reroute(self, skip: str | None = None) -> None:
        for watcher in list(self.watchers):
            watcher()
        for pid, member in self.participants.items():
            if pid == skip or not isinstance(member, Participant):
                continue  # a caller gets the gateway's mix, not forwarders
            self._dirty.add(pid)
            task = self._routing.get(pid)
            if task is None or task.done():
                self._routing[pid] = asyncio.create_task(self._route_loop(pid))

    async def _route_loop(self, pid: str) -> None:
        while pid in self._dirty:
            self._dirty.discard(pid)
            p = self.participants.get(pid)
            if not isinstance(p, Participant):
                return
            try:
                await self._route(p)
            except (TimeoutError, ConnectionError) as e:
                log.info("routing to %s failed (%s); the page will reconnect", pid, e)
                return

    async def _route(self, p: Participant) -> None:
        others = [q for q in self.participants.values() if q.id != p.id]
        wanted: dict[str, list[Publication]] = {
            "audio": [
                q.publications["microphone"] for q in others if "microphone" in q.publications
            ]
        }
        if self.video:
            before = p.choice
            p.choice = subscriptions.decide(self, p, asyncio.get_running_loop().time())
            if p.choice is not None and p.choice.degraded != (
                before is not None and before.degraded
            ):
                log.info(
                    "room %s: %s %s (estimate %s bit/s, view needs %d)",
                    self.id,
                    p.id,
                    "on low layers" if p.choice.degraded else "back to full quality",
                    p.estimate(),
                    p.choice.need,
                )
            if p.choice is None:
                wanted.update(subscriptions.everyone(self, p))
            else:
                wanted.update(subscriptions.by_choice(self, p.choice))
        counts = {role: len(pubs) for role, pubs in wanted.items()}
        # One slot up front (main window, or a voice) so the subscribe connection
        # is up before anyone else arrives: the first frame then needs no ICE.
        first = "main" if self.video else "audio"
        counts[first] = max(1, counts.get(first, 0))
        await p.ensure_slots(counts)
        for role, pubs in wanted.items():
            slots = [s for s in p.slots if s.role == role]
            keep = {id(s.publication) for s in slots if s.publication in pubs}
            free = [s for s in slots if s.publication not in pubs]
            for pub in pubs:
                if id(pub) in keep:
                    continue
                # The slot that carried this person's other layer, if any: the page's
                # tile keeps its stream (no black frame while a new one starts).
                same = [
                    i
                    for i, s in enumerate(free)
                    if s.publication and s.publication.owner == pub.owner
                ]
                free.pop(same[0] if same else 0).forwarder.attach(pub)
            for s in free:
                s.forwarder.attach(None)
        await p.send({"type": "slots", "slots": [self._slot_info(s) for s in p.slots]})
        await self._dynacast()

    async def _dynacast(self) -> None:
        """Pause the camera layers nobody receives, resume those someone needs again."""
        for pid, (high, low) in self.dynacast.changes(subscriptions.demand(self)).items():
            q = self.participants.get(pid)
            if q is not None:
                await q.send({"type": "layers", "high": high, "low": low})

    def _slot_info(self, slot: Any) -> dict[str, Any]:
        pub = slot.publication
        owner = self.participants.get(pub.owner) if pub is not None else None
        source = pub.source if pub is not None else None
        return {
            "mid": slot.mid,
            "role": slot.role,
            "kind": slot.forwarder.kind,
            "participant": owner.id if owner else None,
            "name": owner.name if owner else None,
            # Both layers of a camera are its "camera"; `layer` tells which one comes.
            "source": "camera" if source == CAMERA_LOW else source,
            "layer": layer_of(source) if slot.forwarder.kind == "video" else None,
        }

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = loop.time()
            speaker = self.detector.tick(now)
            if speaker != self.speaker and speaker in self.participants:
                self.speaker = speaker
                name = self.participants[speaker].name
                await self.broadcast({"type": "speaker", "id": speaker, "name": name})
                self.reroute()
            self.gate.tick(now)
            if now >= self._review_at:
                self._review_at = now + REVIEW_SECONDS
                self._review(now)
            speaking = self.detector.speaking(now) & set(self.participants)
            if speaking != self.speaking:
                self.speaking = speaking
                await self.broadcast({"type": "speaking", "ids": sorted(speaking)})

    def _review(self, now: float) -> None:
        """Layers follow the receivers' bandwidth estimates, which change by themselves,
        judged against what the cameras chosen really send (measured here)."""
        for q in self.participants.values():
            for pub in q.publications.values():
                if pub.kind == "video":
                    pub.measure(now)
        for p in self.participants.values():
            if not isinstance(p, Participant) or p.view is None:
                continue
            if subscriptions.decide(self, p, now) != p.choice:
                self.reroute_one(p.id)

    def reroute_one(self, pid: str) -> None:
        """Re-route one page only (its view changed): the others receive the same."""
        if not isinstance(self.participants.get(pid), Participant):
            return
        self._dirty.add(pid)
        task = self._routing.get(pid)
        if task is None or task.done():
            self._routing[pid] = asyncio.create_task(self._route_loop(pid))

    # closing ------------------------------------------------------------
    async def close(self, reason: str) -> None:
        """Tell everyone inside and knocking, then hang up on them."""
        self.closed = reason
        sockets = [p.ws for p in self.participants.values() if isinstance(p, Participant)]
        knocks = list(self.knocks.values())
        self.knocks.clear()
        for p in list(self.participants.values()):
            if isinstance(p, PhoneParticipant):
                p.room_closed(reason)  # the gateway says goodbye, then hangs up
        for ws in sockets:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json({"type": "closed", "reason": reason})
                await ws.close(code=CLOSED_CODE, message=reason.encode())
        for knock in knocks:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await knock.dismiss(reason)
        for p in list(self.participants.values()):
            await self.remove(p)


class RoomManager:
    def __init__(self, registry: Registry, trust_bwe: bool = True) -> None:
        self.registry = registry
        self.trust_bwe = trust_bwe  # VISIO_TRUST_BWE: receivers' estimates choose layers
        self.rooms: dict[str, LiveRoom] = {}
        # Outlive a LiveRoom let go while empty: the meeting is not over for them.
        self.removals: dict[str, Removals] = {}
        self.cooldowns = Cooldowns()
        self.sockets = AddressSockets()

    def get(self, room_id: str) -> LiveRoom | None:
        return self.rooms.get(room_id)

    def open(self, row: Room, occurrence: str | None, around: dt.datetime | None) -> LiveRoom:
        room = self.rooms.get(row.room_id)
        if room is None or room.closed:
            removals = self.removals.setdefault(row.room_id, Removals())
            room = LiveRoom(row, occurrence, around, removals, self.trust_bwe)
            self.rooms[row.room_id] = room
        room.touched = time.monotonic()
        return room

    async def check(self) -> None:
        """One pass over the live rooms against the registry."""
        for room_id, room in list(self.rooms.items()):
            row = self.registry.by_id(room_id)
            reason = None
            if row is None or row.token_hash != room.row.token_hash:
                reason = "deleted"
            elif row.kind is not room.row.kind:
                reason = "changed"
            elif row.event != room.row.event:
                room.row = row
                if room.occurrence is not None and not schedule.occurrence_alive(
                    row.event, room.occurrence, room.around
                ):
                    reason = "cancelled"
            if reason is not None:
                log.info("room %s closes: %s", room_id, reason)
                await room.close(reason)
            # An empty room is let go only after ENTRY_GRACE: someone who opened it may
            # still be on their way in (sending "joined" before `add`); dropping it then
            # would leave them in a room nobody watches, and the next entrant in another.
            idle = room.empty and time.monotonic() - room.touched > ENTRY_GRACE
            if room.closed or idle:
                self.rooms.pop(room_id, None)
        now = time.time()
        for room_id, removals in list(self.removals.items()):
            if room_id not in self.rooms:  # a live room keeps its removals, however late
                removals.purge(now)
                if not removals.marks:
                    del self.removals[room_id]

    async def watch(self) -> None:
        while True:
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self.check()
            except Exception:  # a bad event must not stop watching the other rooms
                log.exception("room watch pass failed")

    async def shutdown(self) -> None:
        """Backend stopping: hang up without "closed", so pages come back by themselves."""
        # All at once: a close waits for the peer's answer (up to 10 s), and one page
        # that does not answer must not hold back everyone else's "come back".
        sockets = [
            p.ws
            for room in self.rooms.values()
            for p in room.participants.values()
            if isinstance(p, Participant)
        ]
        await asyncio.gather(
            *(ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restart") for ws in sockets),
            return_exceptions=True,
        )
        for room in list(self.rooms.values()):
            for knock in list(room.knocks.values()):
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await knock.dismiss(RESTART)
            room.knocks.clear()
            for p in list(room.participants.values()):
                await room.remove(p)
        self.rooms.clear()
