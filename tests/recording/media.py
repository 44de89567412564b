"""Reading back what was recorded or streamed, with PyAV (as any player would)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass
class Probe:
    duration: float  # seconds, from the last video packet's timestamp
    width: int
    height: int
    video_packets: int
    audio_seconds: float
    loudest: float  # highest RMS of one second of audio, full scale = 1.0
    corrupt: int  # packets cut short (read while written, or killed): skipped, as players do


def probe(path: Path) -> Probe:
    with av.open(str(path)) as container:
        assert container.streams.video and container.streams.audio, "video and audio expected"
        video = container.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        last, count, samples, loudest, corrupt = 0.0, 0, 0, 0.0, 0
        first: float | None = None
        window: list[np.ndarray] = []
        for packet in container.demux():
            if packet.is_corrupt:
                corrupt += 1
            elif packet.stream.type == "video" and packet.pts is not None:
                t = float(packet.pts * packet.time_base)
                first = t if first is None else min(first, t)
                last, count = max(last, t), count + 1
            elif packet.stream.type == "audio":
                for frame in packet.decode():
                    pcm = frame.to_ndarray().astype(np.float64).reshape(-1)
                    samples += frame.samples
                    window.append(pcm)
                    if sum(len(w) for w in window) >= frame.sample_rate:
                        block = np.concatenate(window)
                        loudest = max(loudest, float(np.sqrt(np.mean(block**2))))
                        window = []
        rate = container.streams.audio[0].codec_context.sample_rate or 48000
    return Probe(last - (first or 0.0), width, height, count, samples / rate, loudest, corrupt)


def holds(path: Path, seconds: float, voice: bool = True) -> Probe | None:
    """The file's probe once it holds `seconds` of picture and sound (and a voice), else None.

    For polling a file that is still being written: its last fragment may be incomplete.
    """
    got = probe(path)
    if got.duration > seconds and got.audio_seconds > seconds and (got.loudest > 0.01 or not voice):
        return got
    return None
