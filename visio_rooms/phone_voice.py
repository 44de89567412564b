"""A caller's voice as the room takes it: its level, and Opus frames for a Publication.

Room side of a phone call, in the room's media worker: the front's gateway
decodes G.711 once and hands the samples over (phone_calls.py); here they are
measured (RFC 6464 level, for the speaker detector and the silence gate) and
encoded once to Opus for the browsers' forwarders (visio_rooms/phone_bridge.py).
"""

from __future__ import annotations

import asyncio
import fractions
import math
import secrets
from collections import deque
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from visio_core.phone_wire import Pcm
from visio_rooms.sfu.passthrough import EncodedFrame

OPUS_TIME_BASE = fractions.Fraction(1, 48000)


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
        # saves a quarter of the encoder's time (the largest cost of a caller).
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
