"""Three nodes on loopback, one Redis, one PostgreSQL: rooms placed across nodes (issue 16).

Real `visio serve` ×3 (node a runs the CalDAV server, b and c have
VISIO_CALDAV_LISTEN=off), a real redis-server and a real PostgreSQL shared by
all three, one server key file. Signalling clients join through any node; the
cluster's view is read from Redis as `visio rooms list` shows it.
The node kill comes last: it leaves the cluster with two nodes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator

import aiohttp
import pytest
import requests

from bench.sfu_clip import EncodedClip, encode_clip
from tests.e2e.conftest import PASSWORD, new_user
from tests.room.signal import NO_LOBBY, Client, book
from tests.support.aio import run
from tests.support.cluster import NAMES, Cluster, three_nodes
from tests.support.stack import wait_for
from visio_core.cluster import Node
from visio_rooms.client import RoomClient


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, postgres_url: str) -> Iterator[Cluster]:
    with three_nodes(tmp_path_factory.mktemp("cluster"), postgres_url) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def booked(cluster: Cluster) -> dict[str, tuple[str, str]]:
    """Meetings the last tests join, booked on node a (CalDAV) while it surely lives."""
    user = new_user(cluster.nodes["a"])
    return {name: book(user, f"{name}.ics", extra=NO_LOBBY) for name in ("node-kill", "drain")}


def test_three_nodes_register_within_three_seconds(cluster: Cluster) -> None:
    started = time.monotonic()

    def registered() -> list[Node] | None:
        nodes, _ = run(cluster.view())
        serving = [n for n in nodes if n.state == "serving" and n.cores == 1]
        return serving if {n.name for n in serving} == set(NAMES) else None

    nodes = wait_for(registered, 30, what="three nodes in Redis")
    # Every node serves (the fixture waited for it): its next beat is due within 2 s.
    assert time.monotonic() - started < 3, [n.describe() for n in nodes]
    by_name = {n.name: n for n in nodes}
    for name, stack in cluster.nodes.items():
        assert by_name[name].url == stack.web_url.rstrip("/")


def test_thirty_rooms_spread_within_two_per_node(cluster: Cluster) -> None:
    user = new_user(cluster.nodes["a"])
    links = [book(user, f"spread-{i}.ics", extra=NO_LOBBY)[0] for i in range(30)]

    async def scenario() -> dict[str, dict[str, object]]:
        clients = [
            await Client.open(cluster.through(link, NAMES[i % 3])) for i, link in enumerate(links)
        ]
        try:
            for i, c in enumerate(clients):
                assert (await c.join(name=f"P{i}"))["type"] == "joined"

            async def all_live() -> dict[str, dict[str, object]]:
                while True:
                    _, live = await cluster.view()
                    held = {r: w for r, w in live.items() if w.get("participants") == 1}
                    if len(held) >= 30:
                        return held
                    await asyncio.sleep(0.2)

            return await asyncio.wait_for(all_live(), 30)
        finally:
            for c in clients:
                await c.close()

    live = run(scenario())
    per_node = Counter(str(w["node"]) for w in live.values())
    assert set(per_node) == set(NAMES), per_node
    assert max(per_node.values()) - min(per_node.values()) <= 4, per_node  # 10 ± 2
    assert all(abs(n - 10) <= 2 for n in per_node.values()), per_node


def test_twenty_joins_through_three_nodes_place_one_room_once(cluster: Cluster) -> None:
    user = new_user(cluster.nodes["a"])
    link, room_id = book(user, "crowd.ics", extra=NO_LOBBY)

    async def scenario() -> dict[str, dict[str, object]]:
        clients = await asyncio.gather(
            *(Client.open(cluster.through(link, NAMES[i % 3])) for i in range(20))
        )
        try:
            answers = await asyncio.gather(
                *(c.join(name=f"Person {i}") for i, c in enumerate(clients))
            )
            assert all(a["type"] == "joined" for a in answers), answers

            async def everyone() -> dict[str, dict[str, object]]:
                while True:
                    _, live = await cluster.view()
                    if live.get(room_id, {}).get("participants") == 20:
                        return live
                    await asyncio.sleep(0.2)

            return await asyncio.wait_for(everyone(), 30)
        finally:
            for c in clients:
                await c.close()

    live = run(scenario())
    host = live[room_id]["node"]
    logs = {name: stack.log_text() for name, stack in cluster.nodes.items()}
    placed = {name: log.count(f"room {room_id} placed on worker-") for name, log in logs.items()}
    assert placed[str(host)] == 1 and sum(placed.values()) == 1, placed
    on_node = sum(log.count(f"room {room_id} placed on node ") for log in logs.values())
    assert on_node == 1, on_node  # one placement in Redis, by one of the 20 joins


def test_a_password_join_through_a_node_without_caldav(cluster: Cluster) -> None:
    """Node c runs no CalDAV server: the password is checked on node a's, the room may be
    anywhere, and the person comes in under the account's name."""
    user = new_user(cluster.nodes["a"])
    link, _ = book(user, "signed-in.ics", extra=NO_LOBBY)

    async def scenario() -> tuple[dict[str, object], dict[str, object]]:
        c = await Client.open(cluster.through(link, "c"))
        wrong = await Client.open(cluster.through(link, "b"))
        try:
            refused = await wrong.join(login=user.login, password="not the password")
            return await c.join(login=user.login, password=PASSWORD), refused
        finally:
            await c.close()
            await wrong.close()

    joined, refused = run(scenario())
    assert joined["type"] == "joined", joined
    assert refused["type"] == "error", refused
    people = joined.get("participants") or joined.get("people") or []
    assert user.login.title() in str(people) or user.login.title() in str(joined), joined


def test_a_client_cannot_pass_itself_off_as_a_node(cluster: Cluster) -> None:
    """The route word is signed with the server key: a forged one, or a phone socket
    opened from outside, is refused; a plain GET of a socket address holds nothing open."""
    user = new_user(cluster.nodes["a"])
    link, room_id = book(user, "forged.ics", extra=NO_LOBBY)
    socket_path = link.split("/j/", 1)[1]
    web = cluster.nodes["b"].web_url
    plain = requests.get(f"{web}ws/{socket_path}", timeout=10)
    assert plain.status_code == 400, plain.status_code

    async def scenario() -> list[int]:
        statuses = []
        async with aiohttp.ClientSession() as http:
            for url, headers in (
                (f"{web}ws/{socket_path}", {"X-Visio-Route": "e30.AAAAAAAAAAAAAAAAAAAAAA"}),
                (f"{web}internal/phone/{room_id}", {}),
                (f"{web}internal/phone/{room_id}", {"X-Visio-Route": "bogus"}),
            ):
                try:
                    async with http.ws_connect(url, headers=headers):
                        statuses.append(101)
                except aiohttp.WSServerHandshakeError as e:
                    statuses.append(e.status)
        return statuses

    assert run(scenario()) == [403, 403, 403]


def _frames_flowing(receiver: RoomClient) -> Callable[[], float]:
    """A sampler: the longest wait between two new frames seen so far."""
    state = {"last": receiver.video_frames(), "at": time.monotonic(), "worst": 0.0}

    def sample() -> float:
        now, frames = time.monotonic(), receiver.video_frames()
        if frames > state["last"]:
            state["worst"] = max(state["worst"], now - state["at"])
            state["last"], state["at"] = frames, now
        return max(state["worst"], now - state["at"])

    return sample


async def until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def test_redis_restart_nodes_come_back_and_media_never_stops(cluster: Cluster) -> None:
    user = new_user(cluster.nodes["a"])
    link, room_id = book(user, "redis-restart.ics", extra=NO_LOBBY)
    clip = encode_clip(160, 120, 15, 100_000)
    token = link.rsplit("/", 1)[1]

    async def scenario() -> tuple[float, float]:
        async with (
            RoomClient(cluster.nodes["b"].web_url, token) as sender,
            RoomClient(cluster.nodes["c"].web_url, token) as receiver,
        ):
            await sender.join(name="Sender")
            await receiver.join(name="Receiver")
            await sender.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await until(lambda: receiver.video_frames() > 15)
            gap = _frames_flowing(receiver)
            await asyncio.to_thread(cluster.redis.restart)
            back_at = time.monotonic()

            async def registered() -> None:
                while True:
                    try:
                        nodes, live = await cluster.view()
                    except OSError:
                        nodes, live = [], {}
                    if {n.name for n in nodes} == set(NAMES) and room_id in live:
                        return
                    gap()
                    await asyncio.sleep(0.1)

            await asyncio.wait_for(registered(), 30)
            again = time.monotonic() - back_at
            seen = receiver.video_frames()
            await until(lambda: gap() < 5 and receiver.video_frames() > seen + 15)
            return again, gap()

    again, worst = run(scenario())
    print(f"registered again {again:.1f} s after Redis restarted; longest frame gap {worst:.2f} s")
    assert again < 5, again
    assert worst < 1.0, f"media stalled {worst:.1f} s"


def test_while_redis_is_down_a_new_room_waits_and_a_live_one_goes_on(cluster: Cluster) -> None:
    """No placement without Redis (it could split a room over two nodes): a first join
    is told to try again (503) and gets in once Redis is back; a room already live
    takes a new participant through the node that hosts it."""
    user = new_user(cluster.nodes["a"])
    (live_link, live_room), (new_link, _) = (
        book(user, f"{n}.ics", extra=NO_LOBBY) for n in ("live-during-outage", "new-during-outage")
    )

    async def scenario() -> tuple[int, str, str]:
        first = await Client.open(cluster.through(live_link, "b"))
        try:
            assert (await first.join(name="First"))["type"] == "joined"
            host = await asyncio.wait_for(cluster.host_of(live_room), 30)
            await asyncio.to_thread(cluster.redis.stop)
            try:
                try:
                    refused = await Client.open(cluster.through(new_link, "c"))
                    await refused.close()
                    status = 101
                except aiohttp.WSServerHandshakeError as e:
                    status = e.status
                second = await Client.open(cluster.through(live_link, host))
                during = (await second.join(name="Second"))["type"]
                await second.close()
            finally:
                await asyncio.to_thread(cluster.redis.start)

            async def admitted() -> str:
                while True:
                    try:
                        c = await Client.open(cluster.through(new_link, "c"))
                    except aiohttp.WSServerHandshakeError:
                        await asyncio.sleep(0.2)
                        continue
                    try:
                        return str((await c.join(name="After"))["type"])
                    finally:
                        await c.close()

            after = await asyncio.wait_for(admitted(), 15)
            return status, during, after
        finally:
            await first.close()

    status, during, after = run(scenario())
    assert status == 503, status
    assert during == "joined"
    assert after == "joined"


def test_a_killed_node_costs_its_room_seconds(
    cluster: Cluster, booked: dict[str, tuple[str, str]]
) -> None:
    """Kills a node. Two participants reach the room through the two other nodes."""
    link, room_id = booked["node-kill"]
    clip = encode_clip(160, 120, 15, 100_000)
    token = link.rsplit("/", 1)[1]

    async def scenario() -> float:
        # Who hosts the room is decided by the first join: find it, then come in elsewhere.
        probe = await Client.open(link)
        try:
            assert (await probe.join(name="Probe"))["type"] == "joined"
            host = await asyncio.wait_for(cluster.host_of(room_id), 30)
        finally:
            await probe.close()
        first, second = (n for n in NAMES if n != host)
        async with (
            RoomClient(cluster.nodes[first].web_url, token) as one,
            RoomClient(cluster.nodes[second].web_url, token) as two,
        ):
            await one.join(name="One")
            await two.join(name="Two")
            await one.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await two.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await until(lambda: one.video_frames() > 15 and two.video_frames() > 15)
            victim = cluster.nodes[host].proc
            assert victim is not None
            os.killpg(victim.pid, signal.SIGKILL)  # the machine is gone: front and workers
            killed_at = time.monotonic()
            await until(lambda: not one.socket_open and not two.socket_open, 10)
            for c in (one, two):
                await c.rejoin(timeout=10 - (time.monotonic() - killed_at))
            for c in (one, two):
                await c.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            seen = (one.video_frames(), two.video_frames())
            left = 10 - (time.monotonic() - killed_at)
            await until(
                lambda: one.video_frames() > seen[0] + 15 and two.video_frames() > seen[1] + 15,
                left,
            )
            return time.monotonic() - killed_at

    back_in = run(scenario())
    print(f"both see each other again {back_in:.1f} s after their node was killed")
    assert back_in < 10, back_in
    survivors = [s for n, s in cluster.nodes.items() if s.proc and s.proc.poll() is None]
    again = "".join(s.log_text() for s in survivors)
    assert re.search(rf"room {room_id} placed on worker-1", again), "placed again on a survivor"


def test_a_drained_node_leaves_and_its_room_moves_at_once(
    cluster: Cluster, booked: dict[str, tuple[str, str]]
) -> None:
    """After the kill: two nodes left. SIGTERM to the one hosting a room (systemctl stop):
    it leaves the cluster first, so the page it tells to rejoin lands on the other."""
    left = list(cluster.alive())
    assert len(left) == 2, left
    link, room_id = booked["drain"]

    async def scenario() -> tuple[str, str, float]:
        probe = await Client.open(cluster.through(link, left[0]))
        try:
            assert (await probe.join(name="Probe"))["type"] == "joined"
            host = await asyncio.wait_for(cluster.host_of(room_id), 30)
        finally:
            await probe.close()
        entry = next(n for n in left if n != host)
        token = link.rsplit("/", 1)[1]
        async with RoomClient(cluster.nodes[entry].web_url, token) as page:
            await page.join(name="Page")
            victim = cluster.nodes[host].proc
            assert victim is not None
            victim.send_signal(signal.SIGTERM)
            stopped_at = time.monotonic()
            await until(lambda: not page.socket_open, 20)
            told = time.monotonic() - stopped_at
            await page.rejoin(timeout=20)
            back = time.monotonic() - stopped_at
            print(f"the page was told to rejoin {told:.1f} s after SIGTERM")

            async def moved() -> str:
                while True:
                    nodes, live = await cluster.view()
                    if host not in {n.name for n in nodes} and room_id in live:
                        return str(live[room_id]["node"])
                    await asyncio.sleep(0.1)

            return host, await asyncio.wait_for(moved(), 10), back

    host, now, back = run(scenario())
    print(f"drained {host}: the page is back on {now} {back:.1f} s after SIGTERM")
    assert now != host
    assert back < 5, back  # told at once, placed at once: no key has to expire
    victim = cluster.nodes[host].proc
    assert victim is not None and victim.wait(timeout=30) == 0
