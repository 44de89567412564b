"""One caller's media: the RTP socket, G.711 both ways, keys, prompts and the voice published.

Before the caller is in a room the leg paces its own output (prompts, else
silence) every 20 ms; once in, the room's mixer drives it with the mix of
everyone else, and prompts (mute, "this meeting is recorded") are laid over it.
The caller's voice is decoded once: its samples go to the mixer (the other
callers hear them), its level to the speaker detector, and an Opus encoding
(once per leg) to a "microphone" Publication the browsers' forwarders take.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import math
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any, cast

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from conference_backend.phone import g711, rtp
from conference_backend.phone.g711 import Pcm
from conference_backend.phone.sdp import Negotiated
from conference_backend.sfu.passthrough import EncodedFrame

log = logging.getLogger("visio.phone")
FRAME = 160  # samples per 20 ms at 8 kHz
TICK = 0.02
MAX_PAYLOAD = 1280  # bytes of G.711 per packet we take (160 ms); more is dropped
INBOX = 10 * FRAME  # samples waiting for the mixer, at most (200 ms)
OPUS_TIME_BASE = fractions.Fraction(1, 48000)
SILENCE = np.zeros(FRAME, dtype=np.int16)


def level_of(pcm: Pcm) -> int:
    """RFC 6464 style level: -dBov, 0 loudest .. 127 silence."""
    if not len(pcm):
        return 127
    power = float(np.mean(np.square(pcm, dtype=np.float64)))
    if power <= 0.0:
        return 127
    dbov = 10 * math.log10(power / (32768.0**2))
    return max(0, min(127, round(-dbov)))


class VoiceTrack(MediaStreamTrack):
    """The caller's voice as encoded Opus frames, for a Publication to read."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._queue: deque[EncodedFrame] = deque(maxlen=50)
        self._ready = asyncio.Event()

    def put(self, frame: EncodedFrame) -> None:
        self._queue.append(frame)
        self._ready.set()

    async def recv(self) -> Any:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


class OpusVoice:
    """8 kHz PCM in, Opus frames (pts in 48 kHz units) out to a VoiceTrack."""

    def __init__(self, track: VoiceTrack) -> None:
        self.track = track
        codec: Any = av.CodecContext.create("libopus", "w")
        codec.sample_rate = 8000
        codec.format = "s16"
        codec.layout = "mono"
        codec.bit_rate = 24000
        codec.time_base = fractions.Fraction(1, 8000)
        # Complexity 5 of 10: the source is 8 kHz telephone audio already, and it
        # saves a quarter of the encoder's time (the largest cost of a leg).
        codec.options = {"application": "voip", "compression_level": "5"}
        codec.open()
        self.codec = codec
        self.pts = secrets.randbelow(1 << 20) * 960
        self._in = 0

    def encode(self, pcm: Pcm) -> None:
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 8000
        frame.pts = self._in
        self._in += len(pcm)
        for packet in self.codec.encode(frame):
            self.track.put(EncodedFrame(bytes(packet), self.pts, OPUS_TIME_BASE))
            self.pts += 960

    def skip(self, samples: int) -> None:
        """Silence not sent: the clock runs on, so the next words land in their place."""
        self._in += samples
        self.pts += samples * 6  # 8 kHz samples in 48 kHz units


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
        self.inbox: deque[Pcm] = deque()
        self.buffered = 0
        self.received = 0
        self.muted = False
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

    # what the mixer reads ----------------------------------------------------
    def queue_voice(self, pcm: Pcm) -> None:
        self.inbox.append(pcm)
        self.buffered += len(pcm)
        while self.buffered > INBOX:
            self.buffered -= len(self.inbox.popleft())

    def take(self) -> Pcm | None:
        """20 ms of the caller's voice for the mix, None when none came."""
        if self.buffered < FRAME:
            return None
        parts, need = [], FRAME
        while need:
            head = self.inbox[0]
            if len(head) <= need:
                parts.append(self.inbox.popleft())
                need -= len(head)
            else:
                parts.append(head[:need])
                self.inbox[0] = head[need:]
                need = 0
        self.buffered -= FRAME
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

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
