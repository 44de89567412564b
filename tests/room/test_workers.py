"""Rooms in media worker processes: spread by load, rooms list, crash, drain (issue 15).

Real `visio serve` with VISIO_MEDIA_WORKERS, real signalling sockets and, for a
crash, the reference client publishing a pre-encoded camera: a worker killed
with SIGKILL costs its rooms seconds; the rooms of the other worker see nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import pytest

from bench.sfu_clip import EncodedClip, encode_clip
from tests.e2e.conftest import new_user
from tests.room.signal import NO_LOBBY, Client, book
from tests.support.aio import run
from tests.support.stack import Stack, wait_for
from visio_rooms.client import RoomClient


def live_rooms(stack: Stack) -> dict[str, str]:
    """room number -> the `visio rooms list` column saying where it lives."""
    rows = [line.split("\t") for line in stack.visio("rooms", "list").stdout.splitlines()]
    return {row[0]: row[5] for row in rows if row[5] != "-"}


def at_least(stack: Stack, count: int) -> dict[str, str] | None:
    """The live rooms once `count` of them have someone inside (reported each second)."""
    rooms = live_rooms(stack)
    full = [w for w in rooms.values() if not w.endswith(" 0 people")]
    return rooms if len(full) >= count else None


def pid_of(where: str) -> int:
    found = re.search(r"\(pid (\d+)\)", where)
    assert found, where
    return int(found.group(1))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("three"), extra_env={"VISIO_MEDIA_WORKERS": "3"}).start()
    try:
        yield s
    finally:
        s.stop()


def test_ten_rooms_spread_over_three_workers_within_one_of_each_other(three: Stack) -> None:
    user = new_user(three)
    links = [book(user, f"spread-{i}.ics", extra=NO_LOBBY)[0] for i in range(10)]

    async def scenario() -> dict[str, str]:
        clients = [await Client.open(link) for link in links]
        try:
            for i, c in enumerate(clients):
                assert (await c.join(name=f"P{i}"))["type"] == "joined"
            # Placement is reported by the running server every second.
            return await asyncio.to_thread(wait_for, lambda: at_least(three, 10), 30)
        finally:
            for c in clients:
                await c.close()

    where = run(scenario())
    per_worker = Counter(pid_of(w) for w in where.values())
    assert len(per_worker) == 3, where
    assert max(per_worker.values()) - min(per_worker.values()) <= 1, per_worker
    assert all("1 people" in w for w in where.values()), where
    log = three.log_text()
    assert log.count("placed on worker-") >= 10
    assert "least loaded" in log


@pytest.fixture
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("two"), extra_env={"VISIO_MEDIA_WORKERS": "2"}).start()
    try:
        yield s
    finally:
        s.stop()


def test_a_killed_worker_costs_its_room_seconds_and_the_other_room_nothing(two: Stack) -> None:
    user = new_user(two)
    (link_a, room_a), (link_b, _) = (book(user, f"{n}.ics", extra=NO_LOBBY) for n in "ab")
    clip = encode_clip(160, 120, 15, 100_000)

    async def scenario() -> None:
        token_a, token_b = (link.rsplit("/", 1)[1] for link in (link_a, link_b))
        async with (
            RoomClient(two.web_url, token_a) as a1,
            RoomClient(two.web_url, token_a) as a2,
            RoomClient(two.web_url, token_b) as b1,
            RoomClient(two.web_url, token_b) as b2,
        ):
            for c, name in ((a1, "A1"), (a2, "A2"), (b1, "B1"), (b2, "B2")):
                await c.join(name=name)
            await a1.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await b1.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await until(lambda: a2.video_frames() > 15 and b2.video_frames() > 15)
            where = await asyncio.to_thread(wait_for, lambda: at_least(two, 2), 30)
            pids = {pid_of(w) for w in where.values()}
            assert len(pids) == 2, where  # one room per worker
            victim = holder(two, room_a)

            # B's frames are sampled all along: no gap longer than a second.
            gaps: list[float] = []
            stop = asyncio.Event()

            async def watch_b() -> None:
                last, at = b2.video_frames(), time.monotonic()
                while not stop.is_set():
                    await asyncio.sleep(0.1)
                    now, frames = time.monotonic(), b2.video_frames()
                    if frames > last:
                        gaps.append(now - at)
                        last, at = frames, now
                gaps.append(time.monotonic() - at)

            watcher = asyncio.create_task(watch_b())
            os.kill(victim, signal.SIGKILL)
            killed_at = time.monotonic()
            # A's pages rejoin by themselves (here: the reference client's socket
            # closes with "restart"; it joins again with its resume token, as a page does).
            await until(lambda: not a1.socket_open and not a2.socket_open, 10)
            for c in (a1, a2):
                await c.rejoin()
            await a1.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            seen = a2.video_frames()
            await until(lambda: a2.video_frames() > seen + 15, 10 - (time.monotonic() - killed_at))
            back_in = time.monotonic() - killed_at
            stop.set()
            await watcher
            print(f"room A back in {back_in:.1f} s; room B's longest gap {max(gaps):.2f} s")
            assert back_in < 10, back_in
            assert max(gaps) < 1.0, f"room B stalled {max(gaps):.1f} s"

    run(scenario())
    log = two.log_text()
    assert re.search(
        r"worker-\d \(pid \d+\) exited with code -9; its 1 room\(s\) placed again", log
    )
    wait_for(lambda: two.log_text().count(" ready (pid ") >= 3, 30, what="a new worker")


def holder(stack: Stack, room_id: str) -> int:
    """The pid of the worker the log last placed `room_id` on."""
    placed = re.findall(rf"room {room_id} placed on worker-\d \(pid (\d+)\)", stack.log_text())
    assert placed, f"room {room_id} never placed"
    return int(placed[-1])


def test_sigterm_drains_tells_the_pages_and_exits(two: Stack) -> None:
    user = new_user(two)
    link, _ = book(user, "drain.ics", extra=NO_LOBBY)

    async def scenario() -> tuple[int | None, set[int]]:
        c = await Client.open(link)
        try:
            assert (await c.join(name="Dee"))["type"] == "joined"
            where = await asyncio.to_thread(wait_for, lambda: at_least(two, 1), 30)
            assert two.proc is not None
            workers = {int(p) for p in re.findall(r"ready \(pid (\d+)\)", two.log_text())}
            assert pid_of(next(iter(where.values()))) in workers
            os.kill(two.proc.pid, signal.SIGTERM)  # the front only, as systemd would
            return await c.closed(20), workers
        finally:
            await c.close()

    code, workers = run(scenario())
    assert code == 1012  # "restart": the page comes back by itself once served again
    assert two.proc is not None
    assert two.proc.wait(timeout=20) == 0
    assert not any(alive(pid) for pid in workers)
    assert "drains: no new rooms" in two.log_text()


def test_more_than_a_hundred_pages_reach_one_worker(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Each page holds one relayed connection to its room's worker for the whole meeting:
    the front's pool to a worker has no limit (aiohttp's default, 100, left the 101st
    join waiting for a connection that never came back)."""
    s = Stack(
        tmp_path_factory.mktemp("hundred"),
        extra_env={"VISIO_MEDIA_WORKERS": "1", "VISIO_SOCKETS_PER_ADDRESS": "1000"},
    ).start()
    try:
        user = new_user(s)
        links = [book(user, f"crowd-{i}.ics", extra=NO_LOBBY)[0] for i in range(3)]

        async def scenario() -> list[str]:
            clients = [await Client.open(links[i % 3]) for i in range(120)]
            try:
                answers = await asyncio.gather(
                    *(c.join(name=f"P{i}", timeout=60) for i, c in enumerate(clients))
                )
                return [str(a["type"]) for a in answers]
            finally:
                await asyncio.gather(*(c.close() for c in clients))

        kinds = run(scenario())
        assert Counter(kinds) == {"joined": 120}, Counter(kinds)
    finally:
        s.stop()
