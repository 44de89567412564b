"""Rooms placed across nodes through a real redis-server (visio_core/cluster.py).

Three RedisCluster instances in this process act as three nodes: each beats with
its own Node, whose load the test sets. The pure choice (`choose_node`) is
tested on its own first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from tests.support.aio import run
from tests.support.redis import RedisServer
from visio_core.cluster import Node, RedisCluster, RoomReport, choose_node

NAMES = ("node-a", "node-b", "node-c")
FAST = {"beat": 0.2, "ttl": 0.6}  # a node that stops beating is gone within a second


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        yield redis
    finally:
        redis.stop()


class Member:
    """One node: a RedisCluster whose run loop beats with `node` as the test sets it."""

    def __init__(self, url: str, name: str, port: int, beat: float, ttl: float) -> None:
        self.node = Node(name, f"http://127.0.0.1:{port}", cores=2)
        self.cluster = RedisCluster(url, name, beat=beat, ttl=ttl)
        self.task: asyncio.Task[None] | None = None

    def report(self) -> Node:
        return replace(self.node, rooms=dict(self.node.rooms), beat=time.time())

    def start(self) -> None:
        self.task = asyncio.create_task(self.cluster.run(self.report))

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None


@contextlib.asynccontextmanager
async def cluster_of(url: str, beat: float = 2.0, ttl: float = 6.0) -> AsyncIterator[list[Member]]:
    members = [Member(url, name, 8081 + i, beat, ttl) for i, name in enumerate(NAMES)]
    try:
        yield members
    finally:
        for m in members:
            await m.stop()
            await m.cluster.close()


async def wait_until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    """Poll until `check` answers something true (errors, e.g. Redis down, count as no)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = await check()
            if last:
                return last
        except Exception as e:
            last = e
        await asyncio.sleep(0.05)
    raise TimeoutError(f"timed out waiting for {what}: last {last!r}")


async def names(cluster: RedisCluster) -> set[str]:
    return {n.name for n in await cluster.nodes()}


async def all_three(cluster: RedisCluster) -> bool:
    return await names(cluster) == set(NAMES)


# the pure choice ------------------------------------------------------------------
def test_the_least_loaded_node_by_cpu_per_core_then_streams_per_core_then_rooms() -> None:
    a = Node("a", "", cores=4, cpu=3.0, streams=10)  # 0.75 of each core
    b = Node("b", "", cores=8, cpu=3.0, streams=800)  # 0.375: a quarter less per core
    c = Node("c", "", cores=2, cpu=0.6, streams=150)  # 0.3: same quarter as b, fewer streams
    assert choose_node([a, b, c], {}) is c
    d = Node("d", "", cores=2, cpu=0.6, streams=150)
    assert choose_node([c, d], {"c": 1}) is d  # a placement not yet reported counts
    assert choose_node([c, d], {}) is c  # all equal: by name


def test_draining_and_front_nodes_are_never_chosen() -> None:
    draining = Node("a", "", state="draining", cores=8)
    front = Node("b", "", state="front", cores=0)
    no_workers = Node("c", "", cores=0)
    assert choose_node([draining, front, no_workers], {}) is None
    busy = Node("z", "", cores=1, cpu=0.99, streams=5000)
    assert choose_node([draining, front, no_workers, busy], {}) is busy


def test_a_node_reads_back_what_it_wrote_and_nothing_malformed() -> None:
    room = RoomReport(worker="worker-1", pid=42, participants=3)
    node = Node("a", "http://10.0.0.1:8081", "draining", 4, 1.5, 30, {"r": room}, 12.5)
    assert Node.from_json(node.to_json()) == node
    malformed = (
        *("{not json", "[]", "null", '{"name": ""}', '{"name": "a", "cores": "2"}'),
        *('{"name": "a", "state": "gone"}', '{"name": "a", "cpu": NaN}'),
        *('{"name": "a", "rooms": []}', '{"name": "a", "cores": true}', None, b"\xff"),
    )
    for bad in malformed:
        assert Node.from_json(bad) is None, bad
    odd = '{"name": "a", "url": "", "rooms": {"r": {"worker": "w", "pid": "x"}, "s": {}}}'
    parsed = Node.from_json(odd)
    assert parsed is not None and list(parsed.rooms) == ["s"]  # the bad room alone is skipped


# through Redis ----------------------------------------------------------------------
def test_three_nodes_are_registered_within_3_s(server: RedisServer) -> None:
    async def body() -> None:
        async with cluster_of(server.url) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 3.0, "three nodes listed")

    run(body())


def test_thirty_rooms_placed_one_after_another_spread_evenly(server: RedisServer) -> None:
    async def body() -> Counter[str]:
        async with cluster_of(server.url) as members:
            for m in members:
                m.start()  # equal loads, and no room ever reported: the reports lag
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            placed = Counter[str]()
            for i in range(30):
                node = await members[i % 3].cluster.place(f"room-{i}")
                assert node is not None
                placed[node.name] += 1
            return placed

    placed = run(body())
    assert set(placed) == set(NAMES) and all(8 <= n <= 12 for n in placed.values()), placed


def test_twenty_concurrent_joins_through_three_nodes_make_one_placement(
    server: RedisServer,
) -> None:
    async def body() -> None:
        async with cluster_of(server.url) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            joins = [members[i % 3].cluster.place("town-council") for i in range(20)]
            answers = await asyncio.gather(*joins)
            assert None not in answers
            assert len({n.name for n in answers if n is not None}) == 1
            raw = Redis.from_url(server.url, decode_responses=True)
            try:
                assert [k async for k in raw.scan_iter("visio:room:*")] == [
                    "visio:room:town-council"
                ]
                scores = [await raw.zscore(f"visio:placed:{n}", "town-council") for n in NAMES]
                assert sum(s is not None for s in scores) == 1  # counted once, on one node
            finally:
                await raw.aclose()

    run(body())


def test_a_node_that_stops_beating_loses_its_rooms_to_a_live_node(server: RedisServer) -> None:
    async def body() -> None:
        async with cluster_of(server.url, **FAST) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            first = await members[0].cluster.place("room")
            assert first is not None
            host = next(m for m in members if m.node.name == first.name)
            other = next(m for m in members if m is not host)
            host.node.rooms["room"] = RoomReport(worker="worker-1", pid=1, participants=2)
            assert await name_of(other.cluster.where("room")) == first.name
            await host.stop()  # as after kill -9: no more beats, nothing released
            await wait_until(
                lambda: is_none(other.cluster.where("room")), 10, "the room to be nowhere"
            )
            assert first.name not in await names(other.cluster)
            again = await other.cluster.place("room")
            assert again is not None and again.name != first.name
            assert await name_of(other.cluster.where("room")) == again.name

    run(body())


async def is_none(answer: Awaitable[object]) -> bool:
    return (await answer) is None


async def name_of(answer: Awaitable[Node | None]) -> str | None:
    node = await answer
    return node.name if node is not None else None


def test_draining_and_front_nodes_get_no_new_rooms(server: RedisServer) -> None:
    async def body() -> None:
        async with cluster_of(server.url) as members:
            a, b, c = members
            a.node.cpu, a.node.streams = 1.9, 900  # nearly full: still the only choice
            b.node.state = "draining"
            c.node.state, c.node.cores = "front", 0
            for m in members:
                m.start()
            await wait_until(lambda: all_three(a.cluster), 10, "three nodes")
            for i in range(10):
                node = await members[i % 3].cluster.place(f"room-{i}")
                assert node is not None and node.name == "node-a"
            a.node.state = "draining"
            await a.cluster.beat(a.report())
            assert await b.cluster.place("one-more") is None  # nobody may take it
            assert (await c.cluster.where("room-3")) is not None  # the rooms placed stay

    run(body())


def test_nodes_and_rooms_are_back_within_5_s_of_a_redis_restart(server: RedisServer) -> None:
    async def body() -> None:
        async with cluster_of(server.url) as members:  # the real timing: beat 2 s, ttl 6 s
            members[1].node.rooms["held"] = RoomReport(worker="worker-2", pid=7, participants=4)
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            assert (await members[0].cluster.where("held")) is not None
            server.restart()  # empty: no persistence
            started = time.monotonic()

            async def back() -> bool:
                held = await members[0].cluster.where("held")
                listed = await all_three(members[2].cluster)
                return listed and held is not None and held.name == "node-b"

            await wait_until(back, 5.0, "nodes and the held room back in Redis")
            print(f"back {time.monotonic() - started:.2f} s after the restart")

    run(body())


def test_an_unreachable_redis_is_said_once_and_its_return_too(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="visio.cluster")

    def said(text: str) -> list[str]:
        return [r.getMessage() for r in caplog.records if text in r.getMessage()]

    async def body() -> None:
        async with cluster_of(server.url, **FAST) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            server.stop()
            # Each node retries a few times meanwhile: still one warning each.
            await wait_until(lambda: _true(len(said("failed")) >= 9), 20, "failed beats")
            server.start()  # same port
            await wait_until(lambda: all_three(members[0].cluster), 5, "three nodes again")
            await wait_until(lambda: _true(len(said("registered again")) == 3), 5, "back")

    run(body())
    assert len(said("Redis unreachable")) == 3, said("Redis unreachable")
    assert not [r for r in caplog.records if r.name == "asyncio"], caplog.text  # clean cancel


async def _true(value: bool) -> bool:
    return value


def test_malformed_node_entries_are_ignored(server: RedisServer) -> None:
    async def body() -> None:
        async with cluster_of(server.url) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            raw = Redis.from_url(server.url, decode_responses=True)
            try:
                await raw.set("visio:node:broken", "{not json")
                await raw.set("visio:node:odd", '{"name": "odd", "cores": "many"}')
                await raw.sadd("visio:nodes", "broken", "odd")
                await raw.set("visio:room:lost", "broken")
            finally:
                await raw.aclose()
            assert await names(members[0].cluster) == set(NAMES)
            assert await members[1].cluster.where("lost") is None
            placed = await members[2].cluster.place("lost")
            assert placed is not None and placed.name in NAMES

    run(body())


def test_a_room_held_by_two_nodes_is_warned_about_and_listed_once(
    server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> dict[str, dict[str, object]]:
        async with cluster_of(server.url) as (a, b, _):
            room = RoomReport(worker="worker-1", pid=11, participants=5)
            b.node.rooms["split"] = room
            await b.cluster.beat(b.report())
            a.node.rooms["split"] = replace_room(room, pid=22)
            a.node.rooms["mine"] = replace_room(room, participants=1)
            for _ in range(3):  # warned once, not at every beat
                await a.cluster.beat(a.report())
            await a.cluster.release("split")  # not a's: stays b's
            found = await a.cluster.where("split")
            assert found is not None and found.name == "node-b"
            live = await a.cluster.live_rooms()
            await b.cluster.release("mine")  # not b's: stays
            assert (await b.cluster.where("mine")) is not None
            await a.cluster.release("mine")
            assert (await b.cluster.where("mine")) is None
            return live

    live = run(body())
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["room split is held here but placed on live node node-b"]
    assert live == {
        "split": {"node": "node-b", "worker": "worker-1", "pid": 11, "participants": 5},
        "mine": {"node": "node-a", "worker": "worker-1", "pid": 11, "participants": 1},
    }


def replace_room(room: RoomReport, **changes: Any) -> RoomReport:
    return RoomReport(**{**room, **changes})  # type: ignore[typeddict-item]


def test_a_silent_node_others_cannot_reach_is_forgotten_before_its_key_expires(
    server: RedisServer,
) -> None:
    """A machine that is down: beats stopped, key not yet expired (6 s). `forget` drops it
    once it missed more than the given silence; a node that still beats is kept."""

    async def body() -> None:
        async with cluster_of(server.url, beat=0.2, ttl=30.0) as members:
            for m in members:
                m.start()
            await wait_until(lambda: all_three(members[0].cluster), 10, "three nodes")
            first = await members[0].cluster.place("room")
            assert first is not None
            host = next(m for m in members if m.node.name == first.name)
            other = next(m for m in members if m is not host)
            assert not await other.cluster.forget(host.node.name, 1.0)  # it still beats
            assert await name_of(other.cluster.where("room")) == first.name
            await host.stop()
            await wait_until(
                lambda: other.cluster.forget(host.node.name, 0.5), 10, "the silent node dropped"
            )
            assert await other.cluster.where("room") is None  # long before the 30 s expiry
            again = await other.cluster.place("room")
            assert again is not None and again.name != first.name

    run(body())
