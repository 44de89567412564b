"""Where pictures go in the 1280x720 output, and the bits of text drawn on it.

Pure geometry (`fit`) plus two small Pillow drawings: the name label shown over
the main picture, and the card shown when nobody sends video (an audio room, or
every camera off).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 1280, 720
LABEL_HEIGHT = 48
LABEL_MARGIN = 24
BLACK_Y, NEUTRAL_C = 16, 128

Plane = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Box:
    x: int
    y: int
    width: int
    height: int


def _even(value: float) -> int:
    return max(2, int(value) // 2 * 2)


def fit(src_width: int, src_height: int, width: int = WIDTH, height: int = HEIGHT) -> Box:
    """The largest box of the source's aspect ratio inside width x height, centred.

    Sizes and offsets are even, as 4:2:0 chroma needs.
    """
    if src_width <= 0 or src_height <= 0:
        return Box(0, 0, width, height)
    scale = min(width / src_width, height / src_height)
    w = min(width, _even(src_width * scale))
    h = min(height, _even(src_height * scale))
    x = _even((width - w) / 2) if w < width else 0
    y = _even((height - h) / 2) if h < height else 0
    return Box(x, y, w, h)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in (
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    ):
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


@lru_cache(maxsize=32)
def label(name: str) -> Plane:
    """The name label as a luma image: light text in a dark box."""
    font = _font(28)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    left, top, right, bottom = probe.textbbox((0, 0), name, font=font)
    width = min(WIDTH - 2 * LABEL_MARGIN, _even(right - left + 32))
    luma = Image.new("L", (width, LABEL_HEIGHT), 40)
    ImageDraw.Draw(luma).text((16, (LABEL_HEIGHT - (bottom - top)) // 2 - top), name, 235, font)
    return np.asarray(luma, dtype=np.uint8)


def draw_label(y: Plane, u: Plane, v: Plane, name: str) -> None:
    """Put the name in the bottom-left corner (luma, and neutral chroma under it)."""
    if not name:
        return
    luma = label(name)
    h, w = luma.shape
    top, left = HEIGHT - LABEL_MARGIN - h, LABEL_MARGIN
    y[top : top + h, left : left + w] = luma
    u[top // 2 : (top + h) // 2, left // 2 : (left + w) // 2] = NEUTRAL_C
    v[top // 2 : (top + h) // 2, left // 2 : (left + w) // 2] = NEUTRAL_C


def card(title: str, names: tuple[str, ...]) -> Image.Image:
    """What the output shows when nobody sends video: the meeting and who is in it."""
    img = Image.new("RGB", (WIDTH, HEIGHT), (0, 0, 80))
    draw = ImageDraw.Draw(img)
    draw.text((80, 120), title[:60], (255, 255, 255), _font(52))
    for i, name in enumerate(names[:10]):
        draw.text((80, 240 + i * 44), name[:60], (220, 220, 235), _font(34))
    if len(names) > 10:
        draw.text((80, 240 + 10 * 44), f"+{len(names) - 10}", (220, 220, 235), _font(34))
    return img
