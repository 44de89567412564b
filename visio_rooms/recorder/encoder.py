"""Encoding once per room (H.264 + AAC) and writing the MP4 segment file.

The encoders are standalone codec contexts with global headers, so the very
same packets go to the file and to the live stream. The file is fragmented MP4
(`frag_keyframe+empty_moov+default_base_moof`): it is playable up to its last
complete fragment (two seconds at most) even when the process is killed.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeAlias

import av
import numpy as np
from av.audio.frame import AudioFrame
from av.codec.context import Flags
from av.packet import Packet
from av.video.frame import VideoFrame

from visio_rooms.recorder.layout import HEIGHT, WIDTH
from visio_rooms.recorder.mixer import RATE, Pcm

FPS = 30
GOP = 2 * FPS  # a keyframe every 2 s: a fragment of the file, a join point of the stream
VIDEO_BITRATE = 2_000_000
AUDIO_BITRATE = 96_000
VIDEO_TIME_BASE = Fraction(1, FPS)
AUDIO_TIME_BASE = Fraction(1, RATE)
Pkt: TypeAlias = "Packet[Any]"
MP4_FLAGS = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


class Encoder:
    def __init__(self, preset: str = "veryfast") -> None:
        video = av.CodecContext.create("libx264", "w")
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.time_base = VIDEO_TIME_BASE
        video.framerate = Fraction(FPS)
        video.gop_size = GOP
        video.bit_rate = VIDEO_BITRATE
        video.options = {"preset": preset, "tune": "zerolatency", "profile": "high"}
        video.flags |= Flags.global_header
        audio = av.CodecContext.create("aac", "w")
        audio.sample_rate = RATE
        audio.layout = "mono"
        audio.format = "fltp"
        audio.bit_rate = AUDIO_BITRATE
        audio.time_base = AUDIO_TIME_BASE
        audio.flags |= Flags.global_header
        video.open()
        audio.open()
        self.video, self.audio = video, audio

    @property
    def video_extradata(self) -> bytes:
        return bytes(self.video.extradata or b"")

    @property
    def audio_extradata(self) -> bytes:
        return bytes(self.audio.extradata or b"")

    def encode_video(self, picture: VideoFrame, index: int) -> list[Pkt]:
        picture.pts = index
        picture.time_base = VIDEO_TIME_BASE
        return list(self.video.encode(picture))

    def encode_audio(self, pcm: Pcm, first_sample: int) -> list[Pkt]:
        frame = AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = first_sample
        frame.time_base = AUDIO_TIME_BASE
        return list(self.audio.encode(frame))

    def flush(self) -> tuple[list[Pkt], list[Pkt]]:
        video = list(self.video.encode(None))
        audio = list(self.audio.encode(None))
        return video, audio


def copy_packet(packet: Pkt) -> Pkt:
    """A packet of its own (muxing hands the original's buffer over to the muxer)."""
    out: Pkt = Packet(bytes(packet))
    out.pts, out.dts, out.time_base = packet.pts, packet.dts, packet.time_base
    out.is_keyframe = packet.is_keyframe
    return out


class Muxer:
    """One container (a file, or the live stream) fed with the encoder's packets."""

    def __init__(self, target: str, fmt: str, encoder: Encoder, **options: str) -> None:
        kwargs: dict[str, object] = {"format": fmt, "options": options}
        self.container = av.open(target, "w", **kwargs)  # type: ignore[call-overload]
        self.video = self.container.add_stream("h264", rate=FPS)
        self.video.codec_context.width = WIDTH
        self.video.codec_context.height = HEIGHT
        self.video.codec_context.pix_fmt = "yuv420p"
        self.video.codec_context.extradata = encoder.video_extradata
        self.audio = self.container.add_stream("aac", rate=RATE)
        self.audio.codec_context.layout = "mono"
        self.audio.codec_context.extradata = encoder.audio_extradata

    def write(self, packet: Pkt, video: bool) -> None:
        packet.stream = self.video if video else self.audio
        self.container.mux(packet)

    def close(self) -> None:
        self.container.close()


class FileOutput:
    """The MP4 segment being written."""

    def __init__(self, path: Path, encoder: Encoder) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.muxer = Muxer(str(path), "mp4", encoder, **MP4_FLAGS)

    def write(self, packet: Pkt, video: bool) -> None:
        self.muxer.write(packet, video)

    def close(self) -> int:
        """Write the last fragment and sync the file: once this returns, the file is final."""
        try:
            self.muxer.close()
        finally:
            size = self.path.stat().st_size if self.path.exists() else 0
        if size:  # no file at all when stopped before its first frame
            fd = os.open(self.path, os.O_RDONLY)
            try:
                os.fsync(fd)  # the row saying "ended" must never outlive the bytes (power loss)
            finally:
                os.close(fd)
        return size


def silence(samples: int) -> Pcm:
    return np.zeros(samples, dtype=np.int16)
