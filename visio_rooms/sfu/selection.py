"""What each subscriber of a large meeting receives: which person, which layer, in which window.

Pure decisions, no I/O (the room wires them to Forwarders and signaling):

- `parse_view` turns a page's `{"type":"view",...}` message (what it shows now, at
  which width) into a `View`, whatever the page sent;
- `choose` picks, for one subscriber, the publication of each window: the main
  window gets a camera's high layer (or a screen), big tiles the high layer,
  thumbnails the low one; a receiver whose bandwidth estimate is below what that
  needs takes the low layer everywhere but screens (with hysteresis);
- `demand` sums every subscriber's choice per publisher, and `Dynacast` tells
  each publisher only the changes, so encodings nobody receives are paused.

Publication source keys: "camera" (high), "camera-low" (the second, scaled-down
transceiver of the same capture, design14.md) and "screen" (one layer).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import chain, islice
from typing import Literal

Layer = Literal["high", "low"]

CAMERA = "camera"
CAMERA_LOW = "camera-low"
SCREEN = "screen"

HIGH_BPS = 1_200_000  # a 640x480..1280x720 camera or a screen, as browsers send them
LOW_BPS = 200_000  # the camera-low encoding's maxBitrate (180 kbit/s) plus headers
BIG_TILE_WIDTH = 400  # CSS px: wider than this, a 320 px low layer would look blurred
# A browser's REMB trails what it receives (at most ~1.5x it, and below it for a while
# after each change), so "below the need" happens on any good link: only an estimate
# under half of it says the link is weak. Once on low layers the estimate cannot grow
# past ~1.5x those: recovering needs 3/4 of the need, or a probe (sfu/bandwidth.py).
DEGRADE = 0.5
RECOVER = 0.75
MAX_TILES = 64  # above the room capacity's visible share; bounds what a page can make us do
MAX_WIDTH = 10_000
_SCAN = 4 * MAX_TILES  # entries looked at, valid or not: a hostile list costs no more


@dataclass(frozen=True)
class Want:
    """One window of a page: whose video (`source` "camera" | "screen") at `width` CSS px."""

    id: str
    source: str
    width: int


@dataclass(frozen=True)
class View:
    """What a page shows now: the main window (if any) and its visible tiles, in page order."""

    main: Want | None = None
    tiles: tuple[Want, ...] = ()


EMPTY_VIEW = View()


def _width(raw: object) -> int | None:
    """CSS px clamped to 0..MAX_WIDTH; None for what is not a number (bool, str, NaN)."""
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    if isinstance(raw, float):
        if math.isnan(raw):
            return None
        raw = min(max(raw, 0.0), float(MAX_WIDTH))  # infinities clamp too
        return round(raw)
    return min(max(raw, 0), MAX_WIDTH)


def _want(raw: object, known: Collection[str], main: bool) -> Want | None:
    if not isinstance(raw, dict):
        return None
    pid = raw.get("id")
    if not isinstance(pid, str) or pid not in known:
        return None
    # Only the main window shows screens (room-stage.js); a tile is always a camera.
    source = raw.get("source", CAMERA) if main else CAMERA
    if not isinstance(source, str) or source not in (CAMERA, SCREEN):
        return None
    width = _width(raw.get("width", 0))
    if width is None:
        return None
    return Want(pid, source, width)


def parse_view(msg: object, known: Collection[str]) -> View:
    """A page's view message, checked: never raises; anything malformed is an empty View.

    `known` holds the ids the page may ask for (the others in the room, not the
    subscriber itself); unknown ids are dropped, a duplicate tile kept once (the
    first), at most MAX_TILES tiles. A missing "main" or "tiles" means none.
    """
    if not isinstance(msg, dict) or msg.get("type") != "view":
        return EMPTY_VIEW
    raw_main = msg.get("main")
    raw_tiles = msg.get("tiles", [])
    if not isinstance(raw_tiles, list) or not (raw_main is None or isinstance(raw_main, dict)):
        return EMPTY_VIEW
    main = _want(raw_main, known, main=True) if raw_main is not None else None
    tiles: list[Want] = []
    seen: set[str] = set()
    for raw in islice(raw_tiles, _SCAN):
        want = _want(raw, known, main=False)
        if want is None or want.id in seen:
            continue
        seen.add(want.id)
        tiles.append(want)
        if len(tiles) == MAX_TILES:
            break
    return View(main, tuple(tiles))


def layer_of(source: str | None) -> Layer | None:
    """The `layer` of a slot entry: a screen is one high layer; audio and nothing are None."""
    if source in (CAMERA, SCREEN):
        return "high"
    if source == CAMERA_LOW:
        return "low"
    return None


def _bps(source: str) -> int:
    return LOW_BPS if source == CAMERA_LOW else HIGH_BPS


@dataclass(frozen=True)
class Choice:
    """One subscriber's decision: (pid, source key) per window, tiles in view order."""

    main: tuple[str, str] | None = None
    tiles: tuple[tuple[str, str], ...] = ()
    degraded: bool = False
    need: int = 0  # bit/s of the undegraded choice: what the view costs on a good link

    def uses(self) -> Iterator[tuple[str, str]]:
        """Every publication this choice receives (main first)."""
        if self.main is not None:
            yield self.main
        yield from self.tiles


def _camera(layers: Collection[str], preferred: str) -> str | None:
    """The preferred camera layer, else the other one that exists, else none (initials)."""
    if preferred in layers:
        return preferred
    other = CAMERA if preferred == CAMERA_LOW else CAMERA_LOW
    return other if other in layers else None


def _assign(
    view: View, published: Mapping[str, Collection[str]], low: bool
) -> tuple[tuple[str, str] | None, tuple[tuple[str, str], ...]]:
    main: tuple[str, str] | None = None
    if view.main is not None:
        layers = published.get(view.main.id, ())
        if view.main.source == SCREEN and SCREEN in layers:
            main = (view.main.id, SCREEN)  # never degraded: a blurred screen is unreadable
        else:
            # Asked for a screen that has stopped meanwhile: show the person's camera
            # until the page sends its next view.
            source = _camera(layers, CAMERA_LOW if low else CAMERA)
            main = (view.main.id, source) if source is not None else None
    tiles: list[tuple[str, str]] = []
    for want in view.tiles:
        layers = published.get(want.id, ())
        in_main = main is not None and main[0] == want.id and main[1] != SCREEN
        big = want.width > BIG_TILE_WIDTH and not low and not in_main
        source = _camera(layers, CAMERA if big else CAMERA_LOW)
        if source is None:
            continue
        if main == (want.id, source):
            # The very stream the main window gets: the page shows that one in the
            # thumbnail too (as before this issue) rather than receiving it twice.
            continue
        tiles.append((want.id, source))
    return main, tuple(tiles)


def choose(
    view: View,
    published: Mapping[str, Collection[str]],
    estimate: float | None,
    degraded: bool,
    rates: Mapping[tuple[str, str], float] | None = None,
) -> Choice:
    """What one subscriber receives for `view`.

    `published[pid]`: the source keys that person publishes now. `estimate`: the
    subscriber's REMB estimate in bit/s, None when unknown (no limit). `degraded`:
    the previous decision's `Choice.degraded` (hysteresis: degrade below
    `need * DEGRADE`, recover at `need * RECOVER`). `rates`: what each (pid, source)
    publication really carries now (bit/s, measured); the constants stand in for
    those not measured yet.

    The main window's person may also be in the tiles (the page shows their
    thumbnail too): that tile takes the low layer, or is left out when it would be
    the main window's own stream.
    """
    main, tiles = _assign(view, published, low=False)
    known = rates or {}
    # A layer just paused or resumed measures next to nothing: a quarter of the
    # nominal cost at least, so that such a reading does not end a degradation.
    need = sum(
        int(max(known.get(use) or _bps(use[1]), _bps(use[1]) / 4))
        for use in chain((main,) if main else (), tiles)
    )
    if estimate is None:
        weak = False
    elif degraded:
        weak = estimate < need * RECOVER
    else:
        weak = estimate < need * DEGRADE
    if weak:
        main, tiles = _assign(view, published, low=True)
    return Choice(main, tiles, weak, need)


def demand(
    choices: Iterable[Choice],
    extra: Iterable[tuple[str, str]] = (),
    publishers: Iterable[str] = (),
) -> dict[str, tuple[bool, bool]]:
    """Per publisher: (high wanted, low wanted) of its camera.

    `extra` adds the (pid, source) uses of sinks that are not pages (recorder,
    phone). `publishers` lists every camera publisher, so that one nobody
    receives is in the result as (False, False) and gets paused.
    Screens and audio are single-layer: not counted.
    """
    out: dict[str, tuple[bool, bool]] = dict.fromkeys(publishers, (False, False))
    for pid, source in chain(chain.from_iterable(c.uses() for c in choices), extra):
        if source not in (CAMERA, CAMERA_LOW):
            continue
        high, low = out.get(pid, (False, False))
        out[pid] = (high or source == CAMERA, low or source == CAMERA_LOW)
    return out


class Dynacast:
    """What each publisher was last told to send; `changes` returns only what differs.

    A publisher never told anything is always told (its page's state is not
    assumed). One that was told and is absent from the demand now is told
    (False, False). Call `forget(pid)` when the publisher leaves, reloads, or
    starts its camera again: its page then starts afresh.
    """

    def __init__(self) -> None:
        self.told: dict[str, tuple[bool, bool]] = {}

    def changes(self, demand: Mapping[str, tuple[bool, bool]]) -> dict[str, tuple[bool, bool]]:
        out = {pid: want for pid, want in demand.items() if self.told.get(pid) != want}
        for pid, told in self.told.items():
            if pid not in demand and told != (False, False):
                out[pid] = (False, False)
        self.told.update(out)
        return out

    def forget(self, pid: str) -> None:
        self.told.pop(pid, None)
