"""Opus packets to PCM: the one decoder the phone mix and the recorder's mix share.

The SFU itself never decodes (sfu/passthrough.py); these two need voices as
samples, each at its own rate (8 kHz for G.711 callers, 48 kHz for AAC).
"""

from __future__ import annotations

from typing import Any

import av
import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]


class OpusDecoder:
    """Opus packets in, mono int16 samples at `rate` out."""

    def __init__(self, rate: int) -> None:
        self.codec: Any = av.CodecContext.create("opus", "r")
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def decode(self, data: bytes) -> list[Pcm]:
        """The samples of one packet; none for a damaged one (a 20 ms hole, nothing more)."""
        try:
            frames = self.codec.decode(av.Packet(data))
        except av.error.FFmpegError:
            return []
        out: list[Pcm] = []
        for frame in frames:
            frame.pts = None  # the resampler keeps its own count; packets carry none here
            for resampled in self.resampler.resample(frame):
                out.append(np.asarray(resampled.to_ndarray(), dtype=np.int16).reshape(-1))
        return out
