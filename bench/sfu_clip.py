"""A pre-encoded camera for bench/sfu.py: VP8 encoded once, looped as encoded packets.

The publisher then costs almost nothing (no live encoder competing with the
servers for the 2 cores) while the servers still receive a real ~1 Mbit/s
stream, and a keyframe request restarts the clip at its keyframe as a live
encoder would send one.
"""

from __future__ import annotations

import asyncio
import os
import time
from fractions import Fraction

import av
from aiortc.mediastreams import MediaStreamTrack

WIDTH, HEIGHT, FPS, BITRATE = 640, 480, 30, 1_000_000
CLIP_FRAMES = 2 * FPS
VIDEO_CLOCK = 90_000


def encode_clip() -> list[bytes]:
    """A textured picture panning 2 px a frame, VP8 at ~1 Mbit/s; frame 0 is the keyframe."""
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    enc.time_base = Fraction(1, FPS)
    enc.framerate = Fraction(FPS)
    enc.bit_rate = BITRATE
    enc.gop_size = 10 * CLIP_FRAMES  # keyframes only when asked
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    # A blocky texture that pans (cheap to predict, like a scene) plus a patch of fresh
    # noise every frame (like motion): ~1 Mbit/s with a keyframe of a realistic size.
    stride = WIDTH + 2 * CLIP_FRAMES
    blocks = os.urandom((stride // 8 + 1) * (HEIGHT // 8))
    row_of = [
        bytes(blocks[(r // 8) * (stride // 8 + 1) + c // 8] for c in range(stride))
        for r in range(HEIGHT)
    ]
    chroma = bytes([128]) * (WIDTH * HEIGHT // 4)
    patch_w, patch_h = 96, 64
    out: list[bytes] = []
    # Two passes over the clip: the rate control settles in the first; keep the second
    # (with one forced keyframe at its start) so the sizes are those of a steady stream.
    for lap in range(2):
        for i in range(CLIP_FRAMES):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            rows = [row_of[r][2 * i : 2 * i + WIDTH] for r in range(HEIGHT)]
            noise = os.urandom(patch_w * patch_h)
            for r in range(patch_h):
                rows[r] = noise[r * patch_w : (r + 1) * patch_w] + rows[r][patch_w:]
            frame.planes[0].update(b"".join(rows))
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts = lap * CLIP_FRAMES + i
            if lap == 1 and i == 0:
                frame.pict_type = av.video.frame.PictureType.I
            packets = enc.encode(frame)
            if lap == 1:
                out.extend(bytes(p) for p in packets)
    out.extend(bytes(p) for p in enc.encode(None))
    return out[:CLIP_FRAMES]


class EncodedClip(MediaStreamTrack):
    """Loops a pre-encoded clip as av.Packets; restarts at its keyframe when asked."""

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.n = 0
        self.index = 0
        self.start: float | None = None

    def keyframe_wanted(self) -> None:
        self.index = 0

    async def recv(self) -> av.Packet:
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.n / FPS - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self.clip[self.index])
        packet.pts = self.n * (VIDEO_CLOCK // FPS)
        packet.time_base = Fraction(1, VIDEO_CLOCK)
        self.n += 1
        # After the last frame, loop to frame 1: inter frames only, like a live camera.
        self.index = self.index + 1 if self.index + 1 < len(self.clip) else 1
        return packet
