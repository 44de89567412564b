"""What callers hear: the room's voices mixed once per 20 ms, minus each caller's own.

Each web participant's Opus microphone is decoded ONCE per room by a Sink on
its Publication (then resampled to 8 kHz); callers' voices arrive already
decoded from the gateway. Every tick the room total is summed once and each leg
gets `total - own` (mix-minus). The mixer runs in the room's media worker; a
leg here is a caller's line to the front (visio_rooms/phone_calls.py), which
encodes it in G.711 once per caller (docs/signaling.md, "phone calls").
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from typing import Protocol

import numpy as np
import numpy.typing as npt

from visio_core.phone_wire import Pcm
from visio_rooms.opus import OpusDecoder
from visio_rooms.sfu.forwarding import Publication
from visio_rooms.sfu.passthrough import EncodedFrame

log = logging.getLogger("visio.phone")
FRAME = 160
TICK = 0.02
CATCH_UP = 10  # ticks made up at most after a late wake-up (200 ms)
BACKLOG = 10 * FRAME  # samples a web voice may queue (200 ms) before the oldest go


class MixedLeg(Protocol):
    muted: bool

    def take(self) -> Pcm | None: ...

    def emit(self, mix: Pcm | None) -> None: ...


class PcmQueue:
    """Samples waiting for the mix, taken 20 ms at a time; the oldest go past `limit`."""

    def __init__(self, limit: int = BACKLOG) -> None:
        self.limit = limit
        self.chunks: deque[Pcm] = deque()
        self.buffered = 0

    def push(self, pcm: Pcm) -> None:
        self.chunks.append(pcm)
        self.buffered += len(pcm)
        while self.buffered > self.limit:
            self.buffered -= len(self.chunks.popleft())

    def clear(self) -> None:
        self.chunks.clear()
        self.buffered = 0

    def take(self) -> Pcm | None:
        """20 ms of samples, None when fewer came."""
        if self.buffered < FRAME:
            return None
        parts, need = [], FRAME
        while need:
            head = self.chunks[0]
            if len(head) <= need:
                parts.append(self.chunks.popleft())
                need -= len(head)
            else:
                parts.append(head[:need])
                self.chunks[0] = head[need:]
                need = 0
        self.buffered -= FRAME
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class WebVoice:
    """A Sink on one web microphone: Opus decoded once, 8 kHz samples queued for the mix."""

    def __init__(self) -> None:
        self.opus = OpusDecoder(8000)
        self.queue = PcmQueue()
        self.attached: Publication | None = None

    def push(self, publication: Publication, frame: EncodedFrame, key: bool) -> None:
        for pcm in self.opus.decode(frame.data):
            self.queue.push(pcm)

    def detach(self, publication: Publication) -> None:
        publication.sinks.discard(self)
        if self.attached is publication:
            self.attached = None

    def take(self) -> Pcm | None:
        return self.queue.take()


def mix_minus(
    own: list[npt.NDArray[np.int32] | None], others: Iterable[Pcm | None]
) -> list[Pcm | None]:
    """Each leg's output: the sum of every voice but its own (None: silence), clipped."""
    total = np.zeros(FRAME, dtype=np.int32)
    heard = False
    for voice in others:
        if voice is not None:
            total += voice
            heard = True
    for mine in own:
        if mine is not None:
            total += mine
            heard = True
    if not heard:
        return [None] * len(own)
    out: list[Pcm | None] = []
    for contribution in own:
        rest = total - contribution if contribution is not None else total
        out.append(np.clip(rest, -32768, 32767).astype(np.int16))
    return out


class RoomMixer:
    """The mix of one live room; runs while at least one caller is in it."""

    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self.legs: dict[str, MixedLeg] = {}
        self.web: dict[str, WebVoice] = {}  # participant id -> decoder
        self._task: asyncio.Task[None] | None = None
        self.ticks = 0

    def add_leg(self, pid: str, leg: MixedLeg) -> None:
        self.legs[pid] = leg
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"phone mix {self.room_id}")

    async def remove_leg(self, pid: str) -> None:
        self.legs.pop(pid, None)
        if not self.legs:
            await self.stop()

    def sync(self, microphones: dict[str, Publication]) -> None:
        """Follow the web participants' microphones (participant id -> publication)."""
        for pid in list(self.web):
            voice = self.web[pid]
            pub = microphones.get(pid)
            if pub is None or voice.attached is not pub:
                if voice.attached is not None:
                    voice.attached.sinks.discard(voice)
                del self.web[pid]
        for pid, pub in microphones.items():
            if pid not in self.web:
                voice = WebVoice()
                voice.attached = pub
                pub.sinks.add(voice)
                self.web[pid] = voice

    def tick(self) -> None:
        self.ticks += 1
        legs = list(self.legs.values())
        own: list[npt.NDArray[np.int32] | None] = []
        for leg in legs:
            pcm = leg.take()
            own.append(None if pcm is None or leg.muted else pcm.astype(np.int32))
        outputs = mix_minus(own, (v.take() for v in self.web.values()))
        for leg, out in zip(legs, outputs, strict=True):
            leg.emit(out)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            # A late wake-up (a busy loop, a starved process) catches up on the ticks
            # it missed, up to CATCH_UP of them: the phones' jitter buffers take
            # a burst better than a gap.
            for _ in range(CATCH_UP):
                if due > loop.time():
                    break
                try:
                    self.tick()
                except Exception:  # one bad frame must not silence the room for the callers
                    log.exception("phone mix of %s failed", self.room_id)
                due += TICK
            else:
                due = max(due, loop.time())
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def stop(self) -> None:
        self.sync({})
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
