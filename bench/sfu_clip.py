"""Pre-encoded cameras for the benchmarks: VP8 encoded once, looped as encoded packets.

The publisher then costs almost nothing (no live encoder competing with the
servers for the 2 cores) while the servers still receive a real stream, and a
keyframe request restarts the clip at its keyframe as a live encoder would send
one. Two qualities, as a page publishes its camera (issue 14): the *high* clip
(640x480, 30 fps, ~1 Mbit/s) and the *low* one (320x180, 15 fps, ~150 kbit/s,
what the page's `camera-low` encoding sends).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamTrack

WIDTH, HEIGHT, FPS, BITRATE = 640, 480, 30, 1_000_000
LOW_WIDTH, LOW_HEIGHT, LOW_FPS, LOW_BITRATE = 320, 180, 15, 150_000
CLIP_SECONDS = 2
CLIP_FRAMES = CLIP_SECONDS * FPS
VIDEO_CLOCK = 90_000


def encode_clip(
    width: int = WIDTH, height: int = HEIGHT, fps: int = FPS, bitrate: int = BITRATE
) -> list[bytes]:
    """A textured picture panning 2 px a frame, VP8 at ~`bitrate`; frame 0 is the keyframe."""
    frames = CLIP_SECONDS * fps
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = Fraction(1, fps)
    enc.framerate = Fraction(fps)
    enc.bit_rate = bitrate
    enc.gop_size = 10 * frames  # keyframes only when asked
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    # A blocky texture that pans (cheap to predict, like a scene) plus a patch of fresh
    # noise every frame (like motion): the target rate with a keyframe of a realistic size.
    stride = width + 2 * frames
    blocks = os.urandom((stride // 8 + 1) * (height // 8 + 1))
    row_of = [
        bytes(blocks[(r // 8) * (stride // 8 + 1) + c // 8] for c in range(stride))
        for r in range(height)
    ]
    chroma = bytes([128]) * (width * height // 4)
    patch_w, patch_h = width * 3 // 20, height * 2 // 15  # 96x64 at 640x480
    out: list[bytes] = []
    # Two passes over the clip: the rate control settles in the first; keep the second
    # (with one forced keyframe at its start) so the sizes are those of a steady stream.
    for lap in range(2):
        for i in range(frames):
            frame = av.VideoFrame(width, height, "yuv420p")
            rows = [row_of[r][2 * i : 2 * i + width] for r in range(height)]
            noise = os.urandom(patch_w * patch_h)
            for r in range(patch_h):
                rows[r] = noise[r * patch_w : (r + 1) * patch_w] + rows[r][patch_w:]
            frame.planes[0].update(b"".join(rows))
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = lap * frames + i
            if lap == 1 and i == 0:
                frame.pict_type = av.video.frame.PictureType.I
            packets = enc.encode(frame)
            if lap == 1:
                out.extend(bytes(p) for p in packets)
    out.extend(bytes(p) for p in enc.encode(None))
    return out[:frames]


def encode_low_clip() -> list[bytes]:
    """The low layer: 320x180 at 15 fps, ~150 kbit/s."""
    return encode_clip(LOW_WIDTH, LOW_HEIGHT, LOW_FPS, LOW_BITRATE)


def clip_kbps(clip: list[bytes], fps: int = FPS) -> float:
    return sum(map(len, clip)) * 8 * fps / len(clip) / 1000


class EncodedClip(MediaStreamTrack):
    """Loops a pre-encoded clip as av.Packets; restarts at its keyframe when asked.

    `set_paused(True)` stops it (no frame, so no packet) until `set_paused(False)`,
    which restarts at the keyframe, as a browser does when an encoding is switched
    back on (the `layers` message of the signalling, visio_rooms/client.py).
    """

    kind = "video"

    def __init__(self, clip: list[bytes], fps: int = FPS) -> None:
        super().__init__()
        self.clip = clip
        self.fps = fps
        self.n = 0
        self.sent = 0  # frames handed to the sender
        self.index = 0
        self.start: float | None = None
        self.paused = False
        self._resumed = asyncio.Event()

    def keyframe_wanted(self) -> None:
        self.index = 0

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if paused:
            self._resumed.clear()
            return
        self.index = 0
        if self.start is not None:
            # Keep to the wall clock (timestamps jump over the pause, as a camera's
            # do) instead of sending the paused frames in a burst.
            self.n = max(self.n, math.ceil((time.monotonic() - self.start) * self.fps))
        self._resumed.set()

    async def recv(self) -> av.Packet:
        while self.paused:
            await self._resumed.wait()
        now = time.monotonic()
        if self.start is None:
            self.start = now
        if self.start + (self.n + 1) / self.fps < now:
            # More than a frame late (the loop was held up): skip what is past, as a
            # camera drops frames, rather than catch up in a burst that would inflate
            # the frame rates a benchmark measures downstream.
            self.n = math.floor((now - self.start) * self.fps)
        wait = self.start + self.n / self.fps - now
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self.clip[self.index])
        packet.pts = self.n * (VIDEO_CLOCK // self.fps)
        packet.time_base = Fraction(1, VIDEO_CLOCK)
        self.n += 1
        self.sent += 1
        # After the last frame, loop to frame 1: inter frames only, like a live camera.
        self.index = self.index + 1 if self.index + 1 < len(self.clip) else 1
        return packet
