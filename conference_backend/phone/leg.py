"""One caller's media in the front: the RTP socket, G.711 both ways, keys and prompts.

Before the caller is in a room the leg paces its own output (prompts, else
silence) every 20 ms; once in, the room's mixer (in the room's media worker)
drives it with the mix of everyone else, one frame per tick over the call's
socket (phone/remote.py), and prompts (mute, "this meeting is recorded") are
laid over it. The caller's voice is decoded once here and its samples handed
to `on_voice` (the room's worker: the mix, the speaker detector, the Opus
"microphone" the browsers receive).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import numpy as np

from conference_backend.phone import g711, rtp
from conference_backend.phone.g711 import Pcm
from conference_backend.phone.sdp import Negotiated

log = logging.getLogger("visio.phone")
FRAME = 160  # samples per 20 ms at 8 kHz
TICK = 0.02
MAX_PAYLOAD = 1280  # bytes of G.711 per packet we take (160 ms); more is dropped
SILENCE = np.zeros(FRAME, dtype=np.int16)


class Leg(asyncio.DatagramProtocol):
    def __init__(self, neg: Negotiated, peers: set[str]) -> None:
        self.neg = neg
        self.peers = peers  # source addresses we take RTP from (SDP and signalling)
        self.remote = (neg.address, neg.port)
        self.sender = rtp.RtpSender(
            neg.payload_type,
            secrets.randbits(32),
            secrets.randbelow(1 << 16),
            secrets.randbits(32),
        )
        self.dtmf = rtp.DtmfDecoder()
        self.on_key: Callable[[str], None] = lambda key: None
        self.on_voice: Callable[[Pcm], None] | None = None
        self.transport: asyncio.DatagramTransport | None = None
        self.received = 0
        self._prompt: deque[Pcm] = deque()
        self._prompt_done = asyncio.Event()
        self._prompt_done.set()
        self._clock: asyncio.Task[None] | None = None
        self.closed = False

    async def open(self, host: str) -> int:
        loop = asyncio.get_running_loop()
        await loop.create_datagram_endpoint(lambda: self, local_addr=(host, 0))
        assert self.transport is not None
        port: int = self.transport.get_extra_info("sockname")[1]
        return port

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        if addr[0] not in self.peers or len(data) > MAX_PAYLOAD + 64:
            return
        try:
            packet = rtp.parse(data)
        except rtp.RtpError:
            return
        if packet.payload_type == self.neg.dtmf_payload_type:
            key = self.dtmf.feed(packet)
            if key is not None:
                self.on_key(key)
        elif packet.payload_type == self.neg.payload_type and self.on_voice is not None:
            self.received += 1
            self.on_voice(g711.decode(packet.payload, self.neg.codec))

    # output --------------------------------------------------------------------
    def play(self, pcm: Pcm) -> asyncio.Event:
        """Queue a prompt (20 ms chunks); the event is set once all of it was sent."""
        for i in range(0, len(pcm), FRAME):
            chunk = pcm[i : i + FRAME]
            if len(chunk) < FRAME:
                chunk = np.concatenate([chunk, SILENCE[: FRAME - len(chunk)]])
            self._prompt.append(chunk)
        if self._prompt:
            self._prompt_done.clear()
        return self._prompt_done

    def stop_prompt(self) -> None:
        self._prompt.clear()
        self._prompt_done.set()

    async def played(self) -> None:
        await self._prompt_done.wait()

    def emit(self, mix: Pcm | None) -> None:
        """Send 20 ms: the mix (if in a room) with the current prompt laid over it."""
        if self._prompt:
            chunk = self._prompt.popleft()
            if not self._prompt:
                self._prompt_done.set()
            if mix is not None:
                chunk = np.clip(chunk.astype(np.int32) + mix, -32768, 32767).astype(np.int16)
        else:
            chunk = mix if mix is not None else SILENCE
        self.send(chunk)

    def send(self, pcm: Pcm) -> None:
        if self.transport is not None and not self.closed:
            self.transport.sendto(self.sender.next(g711.encode(pcm, self.neg.codec)), self.remote)

    @property
    def pacing(self) -> bool:
        """True while the leg's own clock sends (not in a room)."""
        return self._clock is not None

    def start_clock(self) -> None:
        if self._clock is None:
            self._clock = asyncio.create_task(self._run_clock(), name="phone leg clock")

    async def stop_clock(self) -> None:
        if self._clock is not None:
            self._clock.cancel()
            await asyncio.gather(self._clock, return_exceptions=True)
            self._clock = None

    async def _run_clock(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            for _ in range(10):  # catch up on a late wake-up, as the room's mixer does
                if due > loop.time():
                    break
                self.emit(None)
                due += TICK
            else:
                due = max(due, loop.time())
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def close(self) -> None:
        self.closed = True
        self.stop_prompt()
        await self.stop_clock()
        if self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.close()
