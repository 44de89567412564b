"""The synthetic participants of bench/meeting.py, `count` of them per OS process.

Each process runs its own event loop (so the clients can use more than one
core) and answers its parent over a multiprocessing pipe:

    -> ("settle", P, timeout)  <- {"settled": n}   once every member sees P-1 others
                                                     and gets frames on what it asked for
    -> ("sample",)             <- {"t", "lag", "clients": [...]}   counters, per member
    -> ("quit",)               <- (the process closes its clients and exits)

A member publishes the high clip as `camera` (and, with views, the low clip as
`camera-low`), pre-encoded so publishing costs next to nothing, and receives
without decoding. With views it tells the server what a page with a filmstrip
shows: the active speaker (or the first other participant) in the main window,
the next `thumbnails` others as thumbnails, again whenever that changes.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from aiortc.mediastreams import MediaStreamTrack

from bench.lean_receive import LeanClient
from bench.sfu_clip import LOW_FPS, EncodedClip
from visio_rooms.client import RoomClient

LAG_PERIOD = 0.05  # s between two wake-ups of the loop-lag probe


@dataclass
class Config:
    url: str
    token: str
    count: int
    first: int  # number of this process's first member (its name)
    views: bool  # send `view` and publish `camera-low`; False: everyone, high layer
    thumbnails: int
    high: list[bytes]
    low: list[bytes]
    lean: bool = False  # count received packets at the socket (bench/lean_receive.py)


def choose_view(
    others: list[str], speaker: str | None, thumbnails: int
) -> tuple[str | None, list[str]]:
    """The main window (speaker, else the first other) and the thumbnails (the next others)."""
    if not others:
        return None, []
    main = speaker if speaker in others else others[0]
    return main, [o for o in others if o != main][:thumbnails]


class Member:
    def __init__(self, cfg: Config, number: int) -> None:
        self.cfg = cfg
        self.name = f"P{number:03d}"
        self.client = (LeanClient if cfg.lean else RoomClient)(cfg.url, cfg.token)
        self.main: str | None = None
        self.tiles: list[str] = []
        self.clips = {"camera": EncodedClip(cfg.high)}
        if cfg.views:
            self.clips["camera-low"] = EncodedClip(cfg.low, LOW_FPS)

    async def start(self) -> None:
        c = self.client
        await c.connect()
        answer = await c.join(timeout=120, name=self.name)
        if answer["type"] != "joined":
            raise RuntimeError(f"{self.name} not in: {answer}")
        if self.cfg.views:  # before publishing: never asked for everyone, even briefly
            await self.update_view()
        tracks: dict[str, MediaStreamTrack] = dict(self.clips)
        await c.publish(tracks, pre_encoded=True)

    async def update_view(self) -> None:
        main, tiles = choose_view(
            list(self.client.participants), self.client.speaker, self.cfg.thumbnails
        )
        if self.client.view is None or (main, tiles) != (self.main, self.tiles):
            self.main, self.tiles = main, tiles
            await self.client.send_view(main, tiles)

    async def follow(self) -> None:
        """Re-send the view when the room or the speaker changes it, as the page does."""
        while True:
            await asyncio.sleep(0.25)
            await self.update_view()

    def expected(self, size: int) -> int:
        """Video streams this member should receive in a room of `size`."""
        if self.cfg.views:
            return min(size - 1, self.cfg.thumbnails + 1)
        return size - 1

    def moving(self, before: dict[str, int]) -> int:
        """Video slots whose frame count rose since `before`."""
        c = self.client
        return sum(
            1
            for s in c.slots
            if s["kind"] == "video" and c.frames[s["mid"]] > before.get(s["mid"], 0)
        )

    def sample(self) -> dict[str, Any]:
        c = self.client
        return {
            "main": self.main,
            "tiles": self.tiles,
            "slots": [s for s in c.slot_counters() if s["kind"] == "video"],
            # Every mid, listed in `slots` or not yet: a window's deltas start from these.
            "frames": dict(c.frames),
            "bytes": dict(c.bytes),
            "layers": c.layers,
            "layer_changes": c.layer_changes,
            "sent": {source: clip.sent for source, clip in self.clips.items()},
            "pcs": [
                f"{pc.connectionState}/{pc.iceConnectionState}" if pc else "none"
                for pc in (c.pub_pc, c.sub_pc)
            ],
            "socket": c.socket_open,
            "others": len(c.participants),
        }


class LagProbe:
    """How late the event loop wakes up: a loop that is always late is saturated."""

    def __init__(self) -> None:
        self.lags: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(LAG_PERIOD)
            self.lags.append(loop.time() - t - LAG_PERIOD)

    def take(self) -> float:
        lags, self.lags = self.lags, []
        return statistics.mean(lags) if lags else 0.0


async def settle(members: list[Member], size: int, timeout: float) -> int:
    """Wait until every member knows the whole room and gets frames on all it asked for."""
    deadline = time.monotonic() + timeout
    ok = 0
    while time.monotonic() < deadline:
        before = [dict(m.client.frames) for m in members]
        await asyncio.sleep(1.0)
        ok = sum(
            1
            for m, b in zip(members, before, strict=True)
            if len(m.client.participants) >= size - 1 and m.moving(b) >= m.expected(size)
        )
        if ok == len(members):
            break
    return ok


async def serve(conn: Connection, cfg: Config) -> None:
    loop = asyncio.get_running_loop()
    members = [Member(cfg, cfg.first + i) for i in range(cfg.count)]
    probe = LagProbe()
    tasks = [asyncio.create_task(probe.run())]
    try:
        # One at a time per process (processes in parallel): people trickle into a
        # meeting, and a whole room at once would time out the server's renegotiations.
        for m in members:
            await m.start()
        if cfg.views:
            tasks += [asyncio.create_task(m.follow()) for m in members]
        conn.send({"ready": True})
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command[0] == "settle":
                conn.send({"settled": await settle(members, command[1], command[2])})
            elif command[0] == "sample":
                clients = [m.sample() for m in members]
                conn.send({"t": time.monotonic(), "lag": probe.take(), "clients": clients})
            else:
                break
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for m in members:  # no frame for a sender whose socket is closing
            for clip in m.clips.values():
                clip.set_paused(True)
        await asyncio.gather(*(m.client.close() for m in members), return_exceptions=True)


def worker_main(conn: Connection, cfg: Config) -> None:
    """Entry point of one client process."""
    try:
        asyncio.run(serve(conn, cfg))
    except BaseException:
        conn.send({"error": traceback.format_exc()})
        raise
