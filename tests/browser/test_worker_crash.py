"""A media worker killed (SIGKILL) under a meeting of two browsers (issue 15).

Two Chromium pages meet in room A; a reference-client pair streams in room B,
placed on the other worker. The worker holding A is killed: both pages see each
other again within 10 s, by themselves, and B's frames never stop.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import threading
import time
from collections.abc import Iterator

import pytest

from bench.sfu_clip import EncodedClip, encode_clip
from tests.browser.conftest import Browsers
from tests.browser.pages import join_as_guest, open_room, participant_video, wait_playing
from tests.e2e.conftest import new_user
from tests.room.signal import NO_LOBBY, book
from tests.support.stack import Stack, wait_for
from visio_rooms.client import RoomClient

BACK_WITHIN = 10.0


@pytest.fixture(scope="module")
def two(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("crash"), extra_env={"VISIO_MEDIA_WORKERS": "2"}).start()
    try:
        yield s
    finally:
        s.stop()


def placed_pid(stack: Stack, room_id: str) -> int:
    found = re.findall(rf"room {room_id} placed on worker-\d \(pid (\d+)\)", stack.log_text())
    assert found, f"room {room_id} was never placed"
    return int(found[-1])


class Stream:
    """Room B in a thread of its own: one client publishes a clip, another receives it;
    `longest_gap` is the longest time without a new frame while it ran."""

    def __init__(self, stack: Stack, token: str) -> None:
        self.stack, self.token = stack, token
        self.flowing = threading.Event()
        self.stopping = threading.Event()
        self.longest_gap = 0.0
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._thread, name="room B")

    def _thread(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as e:  # handed to the test
            self.error = e
            self.flowing.set()

    async def _run(self) -> None:
        clip = encode_clip(160, 120, 15, 100_000)
        async with (
            RoomClient(self.stack.web_url, self.token) as sender,
            RoomClient(self.stack.web_url, self.token) as receiver,
        ):
            await sender.join(name="Sender")
            await receiver.join(name="Receiver")
            await sender.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            async with asyncio.timeout(30):
                while receiver.video_frames() < 15:
                    await asyncio.sleep(0.05)
            self.flowing.set()
            last, at = receiver.video_frames(), time.monotonic()
            while not self.stopping.is_set():
                await asyncio.sleep(0.05)
                now, frames = time.monotonic(), receiver.video_frames()
                if frames > last:
                    self.longest_gap = max(self.longest_gap, now - at)
                    last, at = frames, now
            self.longest_gap = max(self.longest_gap, time.monotonic() - at)


def test_two_browsers_meet_again_within_ten_seconds_and_the_other_room_flows_on(
    two: Stack, browsers: Browsers
) -> None:
    user = new_user(two)
    link_b, room_b = book(user, "b.ics", extra=NO_LOBBY)
    link_a, room_a = book(user, "a.ics", extra=NO_LOBBY)
    stream = Stream(two, link_b.rsplit("/", 1)[1])
    stream.thread.start()
    try:
        assert stream.flowing.wait(60) and stream.error is None, stream.error
        agathe = open_room(browsers.launch(), link_a)
        join_as_guest(agathe, "Agathe")
        basile = open_room(browsers.launch(), link_a)
        join_as_guest(basile, "Basile")
        wait_playing(agathe, participant_video("Basile"), timeout=30)
        wait_playing(basile, participant_video("Agathe"), timeout=30)
        victim, other = placed_pid(two, room_a), placed_pid(two, room_b)
        assert victim != other, "rooms A and B were placed on the same worker"
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()
        for page, name in ((agathe, "Basile"), (basile, "Agathe")):
            left = BACK_WITHIN - (time.monotonic() - killed)
            assert left > 0, "not back within 10 s"
            wait_playing(page, participant_video(name), timeout=left)
        back = time.monotonic() - killed
        print(f"pages back in {back:.1f} s after the kill")
    finally:
        stream.stopping.set()
        stream.thread.join(30)
    assert stream.error is None, stream.error
    print(f"room B's longest gap between frames: {stream.longest_gap:.2f} s")
    assert stream.longest_gap < 1.0
    assert placed_pid(two, room_b) == other  # B never moved
    wait_for(lambda: two.log_text().count(" ready (pid ") >= 3, 30, what="a new worker")
