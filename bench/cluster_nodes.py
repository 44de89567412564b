"""bench/cluster.py's section "nodes": the same rooms held by 1, 2, then 3 real nodes.

A phase starts `visio serve` N times (tests/support/cluster.py: one media worker
each, a real redis-server, one PostgreSQL schema shared by the N nodes), books the
rooms on node a (CalDAV), and lets the participants in through every node in turn,
as a load balancer would: a room is placed by Redis on one node and the others relay
its signalling there; media go to the hosting node. Participants and the figures of
a room are bench/workers.py's (bench/meeting_clients.py with lean receivers).

Per node: CPU of its front (`visio serve`) and of its worker (/proc, % of one core),
UDP packets dropped at their sockets, and what Redis says it holds (rooms, streams
forwarded, from the node's last beat before the window ended); the streams at full
rate of the rooms it holds. Per phase: the clients' CPU, lateness and drops, the
machine's busy share, placement evenness (max/mean rooms per node).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench.meeting import (
    MACHINE_FULL,
    SATURATED,
    Clients,
    Run,
    machine_busy,
    measure,
    med_min,
    udp_drops,
)
from bench.meeting_clients import Config
from bench.sfu import cpu_seconds
from bench.sfu_clip import FPS, LOW_FPS
from bench.workers import backend
from bench.workers_report import BURST, FULL, full_rate
from tests.support.cluster import NAMES, Cluster, three_nodes
from tests.support.stack import wait_for

WORKER_FULL = 85.0  # % of a core: a worker (one event loop) this busy has no time to spare


@dataclass
class NodeFigures:
    cpu: dict[str, float] = field(default_factory=dict)  # front, worker-1 -> % of a core
    drops: int = 0  # UDP packets dropped at its processes' sockets during the window
    rooms: int = 0  # Redis: rooms it reported holding
    streams: int = 0  # Redis: streams its workers forward
    full: int = 0  # streams at full rate in the rooms it holds
    expected: int = 0
    problems: int = 0  # WARNING/ERROR lines in its log during the phase

    @property
    def total(self) -> float:
        return sum(self.cpu.values())


@dataclass
class NodesPhase:
    count: int
    size: int
    rooms: list[Run] = field(default_factory=list)
    where: list[str] = field(default_factory=list)  # per room: hosting node ("?": none)
    nodes: dict[str, NodeFigures] = field(default_factory=dict)
    machine: float = 0.0
    load: float = 0.0
    filled: float = 0.0
    failed: str = ""
    out: list[str] = field(default_factory=list)

    @property
    def full(self) -> int:
        return sum(map(full_rate, self.rooms))

    @property
    def expected(self) -> int:
        return sum(r.expected for r in self.rooms)

    @property
    def clients(self) -> list[float]:
        return [c for r in self.rooms for c in r.clients]

    @property
    def nodes_cpu(self) -> float:
        return sum(n.total for n in self.nodes.values())

    @property
    def others(self) -> float:
        """% of a core used by neither the nodes nor the clients: Redis, PostgreSQL, other jobs."""
        return max(0.0, self.machine * (os.cpu_count() or 1) - self.nodes_cpu - sum(self.clients))

    @property
    def fps(self) -> float:
        """Video frames per second the receivers got, all slots together."""
        return sum(sum(r.main_fps) + sum(r.tile_fps) for r in self.rooms)

    @property
    def rooms_full(self) -> int:
        """Rooms whose every stream was at full rate."""
        return sum(full_rate(r) >= r.expected for r in self.rooms)

    def saturated(self) -> bool:
        return self.machine > MACHINE_FULL

    def busy_workers(self) -> list[str]:
        """Nodes whose one worker was at its limit: near a full core, or its sockets dropping."""
        return [
            f"{name} ({f.cpu.get('worker-1', 0):.0f} % of a core"
            + (f", {f.drops} packets dropped at its sockets)" if f.drops else ")")
            for name, f in self.nodes.items()
            if f.cpu.get("worker-1", 0) >= WORKER_FULL or f.drops > 0
        ]

    def client_limits(self) -> list[str]:
        """The clients' own limits (the machine's is said apart: it is this bench's expected
        state); lean receivers count at the socket, so a burst is the sender's backlog."""
        found = dict.fromkeys(x for r in self.rooms for x in r.limits())
        return [x for x in found if x != BURST and not x.startswith("no idle CPU")]

    def evenness(self) -> float:
        """max/mean rooms per node, over the phase's nodes (1.0: even)."""
        per = [n.rooms for n in self.nodes.values()]
        return max(per) / (sum(per) / len(per)) if per and sum(per) else math.nan


def run_phase(count: int, postgres_url: str, tmp: Path, args: argparse.Namespace) -> NodesPhase:
    phase = NodesPhase(count, args.size)
    env = {
        # As bench/workers.py: every client comes from 127.0.0.1 and a room fills in seconds.
        "VISIO_ROOM_CAPACITY": str(args.size + 10),
        "VISIO_RATE_OTHER": "10000/10",
    }
    with three_nodes(tmp / f"nodes-{count}", postgres_url, extra=env, names=NAMES[:count]) as c:
        try:
            wait_for(lambda: _serving(c) == count, 60, what=f"{count} nodes serving in Redis")
            _hold_rooms(c, phase, args)
        finally:
            if args.log:
                args.log.mkdir(parents=True, exist_ok=True)
                for name, stack in c.nodes.items():
                    shutil.copy(stack.data_dir / "serve.log", args.log / f"{count}-{name}.log")
    return phase


def _serving(cluster: Cluster) -> int:
    nodes, _ = asyncio.run(cluster.view())
    return sum(n.state == "serving" and n.cores > 0 for n in nodes)


def _hold_rooms(cluster: Cluster, phase: NodesPhase, args: argparse.Namespace) -> None:
    from tests.e2e.conftest import new_user
    from tests.room.signal import NO_LOBBY, book

    size = phase.size
    per_room = min(size, max(1, math.ceil(size / args.per_process)))
    counts = [size // per_room + (i < size % per_room) for i in range(per_room)]
    user = new_user(cluster.nodes[NAMES[0]])
    booked = [book(user, f"bench-{i}.ics", extra=NO_LOBBY) for i in range(args.node_rooms)]
    through = list(cluster.nodes.values())
    cfgs: list[Config] = []
    room_of: list[int] = []
    high, low = args.clips
    for r, (link, _) in enumerate(booked):
        token = link.rsplit("/", 1)[1]
        for i, n in enumerate(counts):
            # Joins arrive at every node in turn: most are relayed to the room's node.
            url = through[len(cfgs) % len(through)].web_url
            cfgs.append(Config(url, token, n, sum(counts[:i]), True, args.thumbnails, high, low))
            cfgs[-1].lean = True
            room_of.append(r)
    logs = {name: len(s.log_text()) for name, s in cluster.nodes.items()}
    phase.load = os.getloadavg()[0]
    began = time.monotonic()
    clients = Clients(cfgs)
    try:
        room_of = _admit(clients, room_of, cfgs, phase, deadline=began + args.join_timeout)
        phase.filled = time.monotonic() - began
        settled = [
            a["settled"] for a in clients.ask(("settle", size, args.settle), 60 + args.settle)
        ]
        time.sleep(2.0)  # past the keyframe bursts of the last joins
        procs = {
            name: backend(s.proc.pid) for name, s in cluster.nodes.items() if s.proc is not None
        }
        pids = [p.pid for p in clients.procs]
        d0 = {n: sum(map(udp_drops, ps.values())) for n, ps in procs.items()}
        cd0 = [udp_drops(p) for p in pids]
        b0 = {n: {k: sum(cpu_seconds(p)) for k, p in ps.items()} for n, ps in procs.items()}
        c0, m0, t0 = clients.cpu(), machine_busy(), time.monotonic()
        first = clients.ask(("sample",), 60)
        time.sleep(args.seconds)
        last = clients.ask(("sample",), 60)
        try:
            b1 = {n: {k: sum(cpu_seconds(p)) for k, p in ps.items()} for n, ps in procs.items()}
        except OSError as e:
            raise RuntimeError(f"a node's process exited during the window: {e}") from e
        c1, m1, t1 = clients.cpu(), machine_busy(), time.monotonic()
        d1 = {n: sum(map(udp_drops, ps.values())) for n, ps in procs.items()}
        cd1 = [udp_drops(p) for p in pids]
        nodes, live = asyncio.run(cluster.view())  # while everyone is still in
    finally:
        clients.close()
    seconds = t1 - t0
    phase.machine = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    for name in cluster.nodes:
        fig = phase.nodes[name] = NodeFigures()
        fig.cpu = {k: 100 * (b1[name][k] - b0[name][k]) / seconds for k in b0.get(name, {})}
        fig.drops = d1.get(name, 0) - d0.get(name, 0)
        text = cluster.nodes[name].log_text()[logs[name] :]
        fig.problems = sum(" WARNING " in x or " ERROR " in x for x in text.splitlines())
    for node in nodes:
        if node.name in phase.nodes:
            phase.nodes[node.name].rooms = len(node.rooms)
            phase.nodes[node.name].streams = node.streams
    for r, (_, room_id) in enumerate(booked):
        idx = [i for i, x in enumerate(room_of) if x == r]
        run = Run("views", size)
        run.settled = sum(settled[i] for i in idx)
        run.clients = [100 * (c1[i] - c0[i]) / seconds for i in idx]
        run.client_drops = sum(cd1[i] - cd0[i] for i in idx)
        run.lag = max((last[i]["lag"] for i in idx), default=0.0)
        run.machine = phase.machine
        run.expected = size * min(size - 1, args.thumbnails + 1)
        measure(run, [first[i] for i in idx], [last[i] for i in idx])
        out = size - sum(cfgs[i].count for i in idx)  # never got in: served nothing
        run.main_fps += [0.0] * out
        run.tile_fps += [0.0] * (out * min(size - 2, args.thumbnails))
        phase.rooms.append(run)
        host = str(live.get(room_id, {}).get("node", "?"))
        phase.where.append(host)
        if host in phase.nodes:
            phase.nodes[host].full += full_rate(run)
            phase.nodes[host].expected += run.expected


def _admit(
    clients: Clients, room_of: list[int], cfgs: list[Config], phase: NodesPhase, deadline: float
) -> list[int]:
    """As bench/workers.admit: client processes not in and publishing by `deadline` are
    stopped and their participants left out (served nothing); room_of of those kept."""
    kept = []
    for i, (conn, proc) in enumerate(zip(list(clients.conns), list(clients.procs), strict=True)):
        answer = conn.recv() if conn.poll(max(0.0, deadline - time.monotonic())) else None
        if answer is not None and "error" not in answer:
            kept.append(i)
            continue
        reason = "not in by the deadline" if answer is None else answer["error"].splitlines()[-1]
        phase.out.append(f"{cfgs[i].count} of room {room_of[i] + 1} ({reason})")
        proc.kill()
        proc.join()
    clients.conns = [clients.conns[i] for i in kept]
    clients.procs = [clients.procs[i] for i in kept]
    for i in sorted(set(range(len(cfgs))) - set(kept), reverse=True):
        del cfgs[i]
    return [room_of[i] for i in kept]


def show(phase: NodesPhase) -> None:
    n = phase.count
    if phase.failed:
        print(f"{n} node(s): FAILED: {phase.failed}", flush=True)
        return
    print(
        f"{n} node(s): {phase.full}/{phase.expected} streams at full rate"
        f" ({100 * phase.full / max(1, phase.expected):.0f} %); rooms per node max/mean"
        f" {phase.evenness():.2f}; all in after {phase.filled:.0f} s; load before"
        f" {phase.load:.1f}",
        flush=True,
    )
    mains = [f for r in phase.rooms for f in r.main_fps]
    tiles = [f for r in phase.rooms for f in r.tile_fps]
    main_ok, tile_ok = sum(f >= FULL * FPS for f in mains), sum(f >= FULL * LOW_FPS for f in tiles)
    print(
        f"  main windows: {main_ok}/{len(mains)} at full rate, frames/s med/min"
        f" {med_min(mains).strip()} (source {FPS}); thumbnails: {tile_ok}/{len(tiles)},"
        f" {med_min(tiles).strip()} (source {LOW_FPS})",
        flush=True,
    )
    for name, f in phase.nodes.items():
        cpu = " + ".join(f"{k} {v:.0f}" for k, v in f.cpu.items())
        extra = (f", {f.drops} packets dropped" if f.drops else "") + (
            f", {f.problems} warnings/errors logged" if f.problems else ""
        )
        print(
            f"  node {name}: {f.rooms} rooms, {f.streams} streams (Redis); {f.full}/{f.expected}"
            f" at full rate; CPU {cpu} = {f.total:.0f} % of a core{extra}",
            flush=True,
        )
    per = " ".join(f"{c:.0f}" for c in phase.clients)
    got = max(1, sum(r.streams for r in phase.rooms))
    lag = max((r.lag for r in phase.rooms), default=0.0)
    print(
        f"  clients: {sum(phase.clients):.0f} % of a core in {len(phase.clients)} processes"
        f" [{per}] ({100 * sum(phase.clients) / got:.1f} % per 100 streams received, nodes"
        f" {100 * phase.nodes_cpu / got:.1f} %); worst loop lag {lag * 1000:.0f} ms;"
        f" machine {phase.machine:.0f} % busy of {os.cpu_count()} cores",
        flush=True,
    )
    print(
        f"  other processes (Redis, PostgreSQL, other jobs): {phase.others:.0f} % of a core",
        flush=True,
    )
    notes = []
    if phase.busy_workers():
        notes.append("WORKER AT ITS LIMIT on node " + ", ".join(phase.busy_workers()))
    if phase.saturated():
        notes.append(
            f"MACHINE SATURATED ({phase.machine:.0f} % busy): nodes and clients share"
            f" {os.cpu_count()} cores, so this phase is CPU-bound whatever the placement"
        )
    if phase.client_limits():
        why = ", ".join(phase.client_limits())
        if phase.saturated() and max(phase.clients, default=0) < SATURATED:
            # Late without being busy: they waited for a core the nodes held.
            why += f"; each client process under {max(phase.clients):.0f} % of a core: they"
            why += " waited for a core"
        notes.append(f"LIMITED BY THE CLIENTS ({why})")
    if phase.out:
        notes.append("NEVER GOT IN (counted as served nothing): " + "; ".join(phase.out))
    unsettled = sum(r.size - r.settled for r in phase.rooms)
    if unsettled:
        notes.append(f"{unsettled} participants never settled")
    if "?" in phase.where:
        notes.append(f"{phase.where.count('?')} rooms not seen in Redis at the window's end")
    for note in notes:
        print(f"  {note}", flush=True)


def verdict(phases: list[NodesPhase]) -> None:
    """The phases side by side, against the 1-node phase of the same run."""
    one = next((p for p in phases if p.count == 1 and not p.failed), None)
    total = 100 * (os.cpu_count() or 1)
    print(
        "\nnodes  streams at   vs 1   rooms at   frames/s  vs 1   nodes'  clients  others"
        "  machine  rooms per node\n       full rate    node   full rate  in all    node   CPU %"
        "   CPU %    CPU %   busy %   max/mean"
    )
    for p in phases:
        if p.failed:
            print(f"{p.count:5}  NOT MEASURED: {p.failed}")
            continue
        ratio = f"{p.full / one.full:.2f}x" if one is not None and one.full else "-"
        frames = f"{p.fps / one.fps:.2f}x" if one is not None and one.fps else "-"
        print(
            f"{p.count:5}  {p.full:4}/{p.expected:<5} {ratio:>6}"
            f"  {p.rooms_full:3}/{len(p.rooms):<3}"
            f"  {p.fps:9.0f} {frames:>6}  {p.nodes_cpu:6.0f}  {sum(p.clients):7.0f}"
            f"  {p.others:6.0f}  {p.machine:7.0f}  {p.evenness():8.2f}"
            + ("  SATURATED" if p.saturated() else "")
            + ("  WORKER AT ITS LIMIT" if p.busy_workers() else "")
            + ("  LIMITED BY THE CLIENTS" if p.client_limits() else "")
        )
    measured = [p for p in phases if not p.failed]
    if one is not None and not one.full:
        print("no ratio of streams at full rate: none was with 1 node (frames/s in all instead)")
    if any(p.saturated() for p in measured):
        print(
            f"CPU-BOUND: this machine has {total} % of CPU for the nodes, their clients and"
            " everything else; a phase marked SATURATED had none idle, so more nodes on it"
            " could not forward more. Per-node figures show how the work was split, not what"
            " separate machines would hold."
        )
    for p in measured:
        if p.count > 1 and p.full < p.expected:
            others = sum(p.clients) + p.others
            print(
                f"with {p.count} nodes {p.expected - p.full} streams were below full rate: the"
                f" clients and other processes took {others:.0f} % of the machine's {total} %,"
                f" leaving the nodes at most {total - others:.0f} % (they used"
                f" {p.nodes_cpu:.0f} %)"
            )
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
