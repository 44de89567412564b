"""The recording's picture: the main source full-frame (1280x720) with its name.

Only the source shown is decoded (the shared screen, else the active speaker's
camera). On a switch the new source is decoded from its next keyframe on, and
the last picture of the old one stays until then: no black flash, no smear of
a picture decoded without its reference. With no video at all, a card with the
meeting's title and the people in it.

Runs in the recorder's process (worker.py) only.
"""

from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
from av.video.frame import VideoFrame

from visio_rooms.recorder import layout
from visio_rooms.recorder.layout import BLACK_Y, HEIGHT, NEUTRAL_C, WIDTH


class Compositor:
    def __init__(self, title: str) -> None:
        self.title = title
        self.names: tuple[str, ...] = ()
        self.wanted: str | None = None  # key of the publication to show
        self.wanted_name = ""
        self.shown: str | None = None
        self.needs_keyframe = False  # read by the controller, which asks the publisher
        self.decoded = 0
        self._decoder: av.CodecContext | None = None
        self._y = np.full((HEIGHT, WIDTH), BLACK_Y, np.uint8)
        self._u = np.full((HEIGHT // 2, WIDTH // 2), NEUTRAL_C, np.uint8)
        self._v = np.full((HEIGHT // 2, WIDTH // 2), NEUTRAL_C, np.uint8)
        self._box: layout.Box | None = None
        self._picture: VideoFrame | None = None
        self._card: VideoFrame | None = None
        self._card_for: tuple[str, tuple[str, ...]] | None = None

    def want(self, key: str | None, name: str) -> None:
        if key == self.wanted:
            self.wanted_name = name
            return
        self.wanted, self.wanted_name = key, name
        self._decoder = av.CodecContext.create("vp8", "r") if key else None
        self.needs_keyframe = key is not None
        if key is None:
            self.shown, self._picture = None, None

    def decode(self, key: str, data: bytes, keyframe: bool) -> None:
        if key != self.wanted or self._decoder is None:
            return
        if self.needs_keyframe and not keyframe:
            return
        packet = av.Packet(data)
        packet.time_base = Fraction(1, 90000)
        try:
            frames = self._decoder.decode(packet)  # type: ignore[attr-defined]
        except av.error.FFmpegError:
            self.needs_keyframe = True  # damaged: start again at the next keyframe
            return
        self.needs_keyframe = False
        for frame in frames:
            self._compose(frame)
            self.shown = key
            self.decoded += 1

    def _compose(self, frame: VideoFrame) -> None:
        box = layout.fit(frame.width, frame.height)
        if box != self._box:  # new geometry: what was outside the new box goes black
            self._y.fill(BLACK_Y)
            self._u.fill(NEUTRAL_C)
            self._v.fill(NEUTRAL_C)
            self._box = box
        scaled = frame.reformat(box.width, box.height, "yuv420p")
        flat = scaled.to_ndarray().reshape(-1)
        w, h = box.width, box.height
        q = (w // 2) * (h // 2)
        self._y[box.y : box.y + h, box.x : box.x + w] = flat[: w * h].reshape(h, w)
        cy, cx = box.y // 2, box.x // 2
        self._u[cy : cy + h // 2, cx : cx + w // 2] = flat[w * h : w * h + q].reshape(h // 2, -1)
        self._v[cy : cy + h // 2, cx : cx + w // 2] = flat[w * h + q :].reshape(h // 2, -1)
        layout.draw_label(self._y, self._u, self._v, self.wanted_name)
        planes = np.concatenate((self._y.reshape(-1), self._u.reshape(-1), self._v.reshape(-1)))
        self._picture = VideoFrame.from_ndarray(planes.reshape(-1, WIDTH), format="yuv420p")

    def picture(self) -> VideoFrame:
        """What to encode now (the same picture again until a new one is decoded)."""
        if self._picture is not None:
            return self._picture
        wanted = (self.title, self.names)
        if self._card is None or self._card_for != wanted:
            image = layout.card(*wanted)
            rgb = VideoFrame.from_image(image)  # type: ignore[no-untyped-call]
            self._card = rgb.reformat(format="yuv420p")
            self._card_for = wanted
        return self._card
