"""Several nodes: how evenly, and how fast, rooms are placed across nodes (issue 16).

Section "simulation" (this file, now): 10,000 rooms placed over 100 nodes.

1. Pure: `choose_node` (visio_core/cluster.py) over 100 identical nodes of 16
   cores, rooms of random sizes (most of 2-6 people, some of 7-20, a few of
   21-50), each node's load updated as its rooms land. Evenness: rooms and load
   (CPU per core) per node, min/max/stdev and max/mean; time per placement
   (median, p99). Baselines from the same rooms in the same run: random
   placement (what a load-blind balancer gives) and round robin (even room counts,
   blind to their sizes).
2. Through a real redis-server (tests/support/redis.py): 100 RedisCluster
   instances, one per simulated node, each beating its node key; the rooms are
   placed with `RedisCluster.place` through the instances in turn (joins arrive
   at any node), and the winner beats its new load and rooms before the next
   room (not timed). Time per placement against the pure choice's.

A room's load: its people each receive up to 10 videos (a main window and 9
thumbnails) and 3 audio streams; a stream forwarded costs 0.1 % of a core (a room
of 50 took about half a core of one worker, bench/workers.py).

Section "nodes": the SAME rooms (`--node-rooms` R of `--size` P participants)
held by 1, then 2, then 3 real nodes on this machine (bench/cluster_nodes.py):
each phase starts its own cluster (tests/support/cluster.py: `visio serve` with
one media worker per node, a real redis-server, one PostgreSQL shared by the
nodes), the participants come in through every node in turn, and Redis places
the rooms. Participants are bench/workers.py's: each publishes pre-encoded clips
(camera 640x480 30 fps and camera-low 320x180 15 fps) and receives a main window
and 9 thumbnails as a lean receiver (bench/lean_receive.py), in processes of
`--per-process`. A stream is at full rate at >= 90 % of its source's frame rate.
Per phase: streams at full rate over streams expected (main windows and
thumbnails also apart: an overloaded worker starves the 30 fps main windows
first), rooms whose every stream is at full rate, frames/s delivered in all, and
the ratios against the 1-node phase of the same run; per node its CPU (front +
worker, /proc), the rooms and streams Redis has for it, and the streams at full
rate of its rooms; placement evenness (max/mean rooms per node); the machine's
busy share and what neither the nodes nor the clients used (Redis, PostgreSQL,
other jobs). A node whose worker nears a full core or drops packets at its
sockets is marked WORKER AT ITS LIMIT.

The clients share the machine's cores with the nodes, so they are measured: CPU
of each client process (threads included, /proc), how late their event loops
wake up, UDP packets dropped at their sockets; a phase where one is near a full
core, late or dropping is marked LIMITED BY THE CLIENTS. On 2 cores the run is
expected to be CPU-bound: a phase with no idle CPU left on the machine (others'
jobs included) is marked SATURATED: more nodes on the same cores cannot forward
more, and the per-node figures show how the work was split.

    .venv/bin/python -m bench.cluster [--nodes 100] [--rooms 10000] [--redis-rooms 2000]
    .venv/bin/python -m bench.cluster --only nodes [--node-rooms 6] [--size 12] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.redis import RedisServer  # noqa: E402
from visio_core.cluster import Node, RedisCluster, RoomReport, choose_node  # noqa: E402

CORES = 16  # per node
CPU_PER_STREAM = 0.001  # cores
VIDEOS, AUDIOS = 10, 3  # received per person at most


def room_sizes(count: int, rng: random.Random) -> list[int]:
    sizes = []
    for _ in range(count):
        kind = rng.random()
        low, high = (2, 6) if kind < 0.70 else (7, 20) if kind < 0.95 else (21, 50)
        sizes.append(rng.randint(low, high))
    return sizes


def streams_of(people: int) -> int:
    return people * (min(people - 1, VIDEOS) + min(people - 1, AUDIOS))


def fresh_nodes(count: int) -> list[Node]:
    return [
        Node(f"node-{i:03d}", f"http://10.0.{i // 250}.{i % 250 + 1}:8081", cores=CORES)
        for i in range(count)
    ]


def land(node: Node, room_id: str, people: int) -> None:
    """The room's load shows in its node's next report."""
    streams = streams_of(people)
    node.streams += streams
    node.cpu += streams * CPU_PER_STREAM
    node.rooms[room_id] = RoomReport(worker="worker-1", pid=1, participants=people)


@dataclass
class Result:
    label: str
    rooms: list[int]  # per node
    loads: list[float]  # CPU per core, per node
    micros: list[float]  # per placement

    def spread(self) -> float:
        return max(self.loads) / statistics.fmean(self.loads)

    def show(self) -> None:
        r, ld = self.rooms, self.loads
        print(f"  {self.label}")
        print(
            f"    rooms per node: min {min(r)}, max {max(r)}, stdev {statistics.pstdev(r):.2f},"
            f" max/mean {max(r) / statistics.fmean(r):.3f}"
        )
        print(
            f"    load per node (CPU per core): min {min(ld):.3f}, max {max(ld):.3f},"
            f" stdev {statistics.pstdev(ld):.4f}, max/mean {self.spread():.3f}"
        )
        if self.micros:
            print(
                f"    time per placement: median {statistics.median(self.micros):.1f} µs,"
                f" p99 {percentile(self.micros, 0.99):.1f} µs"
            )


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def result(label: str, nodes: list[Node], micros: list[float]) -> Result:
    return Result(label, [len(n.rooms) for n in nodes], [n.cpu / n.cores for n in nodes], micros)


def place_all(
    label: str, sizes: list[int], count: int, pick: Callable[[list[Node], int], Node]
) -> Result:
    nodes, micros = fresh_nodes(count), []
    for i, people in enumerate(sizes):
        started = time.perf_counter()
        node = pick(nodes, i)
        micros.append((time.perf_counter() - started) * 1e6)
        land(node, f"room-{i}", people)
    return result(label, nodes, micros)


def simulate(nodes: int = 100, rooms: int = 10_000, seed: int = 16) -> dict[str, Result]:
    """The pure placement of `rooms` over `nodes`, and the two baselines."""
    rng = random.Random(seed)
    sizes = room_sizes(rooms, rng)

    def least_loaded(candidates: list[Node], _: int) -> Node:
        chosen = choose_node(candidates, {})
        assert chosen is not None
        return chosen

    return {
        "choose_node": place_all("choose_node (least loaded)", sizes, nodes, least_loaded),
        "random": place_all("random (baseline)", sizes, nodes, lambda ns, _: rng.choice(ns)),
        "round robin": place_all("round robin", sizes, nodes, lambda ns, i: ns[i % len(ns)]),
    }


async def through_redis(url: str, nodes: int, rooms: int, seed: int = 16) -> Result:
    """The same kind of rooms placed with RedisCluster.place, one node instance each."""
    sizes = room_sizes(rooms, random.Random(seed))
    mine = fresh_nodes(nodes)
    # No beat loops here (a node beats when a room lands on it): keys must outlive the run.
    members = [RedisCluster(url, n.name, ttl=3600.0, room_ttl=3600.0) for n in mine]
    by_name = dict(zip((n.name for n in mine), zip(mine, members, strict=True), strict=True))
    micros = []
    try:
        for node, member in zip(mine, members, strict=True):
            node.beat = time.time()
            await member.beat(node)
        for i, people in enumerate(sizes):
            started = time.perf_counter()
            placed = await members[i % nodes].place(f"room-{i}")
            micros.append((time.perf_counter() - started) * 1e6)
            assert placed is not None
            node, member = by_name[placed.name]
            land(node, f"room-{i}", people)
            node.beat = time.time()
            await member.beat(node)
    finally:
        for member in members:
            await member.close()
    return result(f"RedisCluster.place ({rooms} rooms)", mine, micros)


def nodes(args: argparse.Namespace) -> None:
    """Section "nodes": the same rooms held by 1, 2 and 3 nodes (module docstring)."""
    from bench.cluster_nodes import NodesPhase, run_phase, show, verdict
    from bench.sfu_clip import LOW_FPS, clip_kbps, encode_clip, encode_low_clip
    from tests.support.postgres import Postgres

    high, low = encode_clip(), encode_low_clip()
    args.clips = (high, low)
    print(
        f"\nNodes on this machine: {args.node_rooms} rooms of {args.size} (lean receivers,"
        f" {min(args.size - 1, args.thumbnails + 1)} videos each), {args.seconds:.0f} s window;"
        f" clips high {clip_kbps(high):.0f} kbit/s, low {clip_kbps(low, LOW_FPS):.0f} kbit/s;"
        " load average"
        f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    root = Path(tempfile.mkdtemp(prefix="visio-bench-nodes-"))
    # Its own folder: PostgreSQL runs as its own user, who must reach it (tests/conftest.py).
    pg_root = Path(tempfile.mkdtemp(prefix="visio-bench-pg-"))
    server = Postgres(pg_root).start()
    phases: list[NodesPhase] = []
    try:
        for count in args.counts:
            started = time.monotonic()
            try:
                phase = run_phase(count, server.url, root, args)
            except (TimeoutError, RuntimeError) as e:  # the other phases still count
                phase = NodesPhase(count, args.size, failed=str(e).splitlines()[0])
            phases.append(phase)
            show(phase)
            print(f"  (phase took {time.monotonic() - started:.0f} s)", flush=True)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(pg_root, ignore_errors=True)
    verdict(phases)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", choices=("simulation", "nodes"), help="one section")
    parser.add_argument("--nodes", type=int, default=100, help="simulation: nodes")
    parser.add_argument("--rooms", type=int, default=10_000, help="simulation: rooms")
    parser.add_argument("--redis-rooms", type=int, default=2_000)
    group = parser.add_argument_group("nodes section")
    group.add_argument("--counts", default="1,2,3", help="node counts, one phase each")
    group.add_argument("--node-rooms", type=int, default=6, help="rooms held in every phase")
    group.add_argument("--size", type=int, default=12, help="participants per room")
    group.add_argument("--seconds", type=float, default=10.0, help="steady window")
    group.add_argument("--thumbnails", type=int, default=9)
    group.add_argument("--per-process", type=int, default=8, help="clients per process")
    group.add_argument("--join-timeout", type=float, default=120.0, help="s to get everyone in")
    group.add_argument("--settle", type=float, default=20.0, help="s to wait for every stream")
    group.add_argument("--log", type=Path, help="keep the nodes' logs in this folder")
    args = parser.parse_args()
    args.counts = [int(x) for x in args.counts.split(",") if x]
    if args.only != "nodes":
        simulation(args)
    if args.only != "simulation":
        nodes(args)


def simulation(args: argparse.Namespace) -> None:
    print(f"Placement of {args.rooms} rooms over {args.nodes} nodes of {CORES} cores (pure)")
    results = simulate(args.nodes, args.rooms)
    for r in results.values():
        r.show()
    chosen, blind = results["choose_node"], results["random"]
    print(
        f"  evenness: load max/mean {chosen.spread():.3f} against {blind.spread():.3f}"
        f" for random placement ({blind.spread() / chosen.spread():.2f}x as uneven)"
    )

    root = Path(tempfile.mkdtemp(prefix="visio-bench-redis-"))
    server = RedisServer(root).start()
    try:
        print(f"\nThrough redis-server ({args.nodes} node keys, {args.redis_rooms} rooms)")
        started = time.monotonic()
        redis = asyncio.run(through_redis(server.url, args.nodes, args.redis_rooms))
        took = time.monotonic() - started
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    redis.show()
    same = simulate(args.nodes, args.redis_rooms)["choose_node"]  # the same first rooms
    alike = sum(a == b for a, b in zip(redis.rooms, same.rooms, strict=True))
    print(
        f"  the pure choice on the same {args.redis_rooms} rooms: load max/mean"
        f" {same.spread():.3f}; same room count on {alike} of {args.nodes} nodes"
    )
    pure = statistics.median(chosen.micros)
    print(
        f"  time per placement: median {statistics.median(redis.micros) / pure:.0f}x the pure"
        f" choice's ({pure:.1f} µs); the whole run took {took:.1f} s (beats included)"
    )


if __name__ == "__main__":
    main()
