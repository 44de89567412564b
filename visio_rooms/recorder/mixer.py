"""The room's mixed audio: each voice decoded once, summed into one 48 kHz mono track.

Every participant's microphone (browsers and phone callers alike publish Opus)
gets one decoder; its PCM goes into a small jitter buffer. The encoder's clock
pulls as many samples as wall time asks for; a voice that has nothing buffered
contributes silence, and one that ran ahead is trimmed so the delay stays short.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from visio_rooms.opus import OpusDecoder

RATE = 48000
PRIME_SAMPLES = RATE * 60 // 1000  # a voice plays once 60 ms are buffered
MAX_SAMPLES = RATE * 300 // 1000  # past 300 ms buffered, the oldest samples go

Pcm = npt.NDArray[np.int16]


def mix(chunks: list[npt.NDArray[np.int32]], samples: int) -> Pcm:
    """Sum voices with saturation (no wrap-around into a loud click)."""
    total = np.zeros(samples, dtype=np.int32)
    for chunk in chunks:
        total[: len(chunk)] += chunk
    return np.clip(total, -32768, 32767).astype(np.int16)


def rms(pcm: Pcm) -> float:
    if not len(pcm):
        return 0.0
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2)))


class VoiceBuffer:
    """One voice's decoded samples waiting to be mixed."""

    def __init__(self) -> None:
        self._pending: list[Pcm] = []
        self._count = 0
        self.playing = False

    @property
    def buffered(self) -> int:
        return self._count

    def put(self, pcm: Pcm) -> None:
        self._pending.append(pcm)
        self._count += len(pcm)
        if self._count > MAX_SAMPLES:
            self._drop(self._count - MAX_SAMPLES // 2)
        if self._count >= PRIME_SAMPLES:
            self.playing = True

    def take(self, samples: int) -> npt.NDArray[np.int32]:
        """Up to `samples` samples (fewer when it ran dry: the rest is silence)."""
        if not self.playing or not self._pending:
            self.playing = False
            return np.zeros(0, dtype=np.int32)
        joined = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        out, rest = joined[:samples], joined[samples:]
        self._pending = [rest] if len(rest) else []
        self._count = len(rest)
        if not len(rest):
            self.playing = False  # re-prime: a short gap now beats a click every packet
        return out.astype(np.int32)

    def _drop(self, samples: int) -> None:
        joined = np.concatenate(self._pending)[samples:]
        self._pending = [joined] if len(joined) else []
        self._count = len(joined)


class Voice:
    """A decoder and a buffer for one microphone."""

    def __init__(self) -> None:
        self.opus = OpusDecoder(RATE)
        self.buffer = VoiceBuffer()

    def decode(self, data: bytes) -> None:
        for pcm in self.opus.decode(data):
            self.buffer.put(pcm)


class Mixer:
    """All the voices of a room; `pull(n)` gives the next n mixed samples."""

    def __init__(self) -> None:
        self.voices: dict[str, Voice] = {}

    def decode(self, key: str, data: bytes) -> None:
        voice = self.voices.get(key)
        if voice is None:
            voice = self.voices[key] = Voice()
        voice.decode(data)

    def remove(self, key: str) -> None:
        self.voices.pop(key, None)

    def pull(self, samples: int) -> Pcm:
        return mix([v.buffer.take(samples) for v in self.voices.values()], samples)
