"""The reference client's helpers for large meetings (bench/meeting.py relies on them):
the roster it keeps, the bytes it counts per slot, pre-encoded publishing with
keyframe requests routed to the clip, and a clip that pauses like a dynacast layer."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bench.sfu_clip import VIDEO_CLOCK, EncodedClip, encode_clip
from tests.e2e.conftest import new_user
from tests.room.signal import NO_LOBBY, book
from tests.support.aio import run
from tests.support.stack import Stack
from visio_rooms.client import RoomClient


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("client")).start()
    try:
        yield s
    finally:
        s.stop()


async def until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def test_roster_and_bytes_per_slot_from_a_pre_encoded_camera(stack: Stack) -> None:
    link, _ = book(new_user(stack), "client.ics", extra=NO_LOBBY)
    token = link.rsplit("/", 1)[1]
    clip = encode_clip(160, 120, 15, 100_000)

    async def scenario() -> None:
        async with RoomClient(stack.web_url, token) as ana, RoomClient(stack.web_url, token) as bo:
            await ana.join(name="Ana")
            assert ana.joined is not None
            ana_id = ana.joined["you"]["id"]
            await bo.join(name="Bo")
            assert bo.joined is not None
            assert list(bo.participants) == [ana_id]
            await until(lambda: bo.joined and bo.joined["you"]["id"] in ana.participants)

            # The server holds a slot back until a keyframe: frames arriving at Bo
            # mean its keyframe request reached the clip (restart at frame 0).
            camera = EncodedClip(clip, 15)
            await ana.publish({"camera": camera}, pre_encoded=True)

            def from_ana() -> list[dict[str, Any]]:
                return [s for s in bo.slot_counters() if s["participant"] == ana_id]

            await until(lambda: any(s["frames"] >= 15 for s in from_ana()))
            row = next(s for s in from_ana() if s["frames"])
            assert row["kind"] == "video" and row["source"] == "camera"
            frames, size = row["frames"], row["bytes"]
            # Whole encoded frames of the clip, nothing else: between its smallest and
            # its largest frame on average.
            assert min(map(len, clip)) <= size / frames <= max(map(len, clip))

            await ana.close()
            await until(lambda: not bo.participants)

    run(scenario())


def test_a_paused_clip_sends_nothing_then_resumes_at_its_keyframe_on_time() -> None:
    clip = [b"key", b"inter1", b"inter2"]

    async def scenario() -> None:
        track = EncodedClip(clip, 30)
        first = await track.recv()
        assert bytes(first) == b"key" and first.pts == 0
        assert bytes(await track.recv()) == b"inter1"
        track.set_paused(True)
        paused_at = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(track.recv(), 0.3)
        track.set_paused(False)
        resumed = await track.recv()
        # A keyframe first, its timestamp following the wall clock over the pause.
        assert bytes(resumed) == b"key"
        assert resumed.pts >= (time.monotonic() - paused_at - 0.1) * VIDEO_CLOCK
        assert bytes(await track.recv()) == b"inter1"
        track.stop()

    run(scenario())
