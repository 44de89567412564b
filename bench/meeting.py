"""Large meetings (issue 14): what one `visio serve` costs when each page receives
only what it shows, against everyone receiving everyone.

P synthetic participants join one room. Each publishes its camera twice from
pre-encoded clips (bench/sfu_clip.py: `camera` 640x480 30 fps ~1 Mbit/s and
`camera-low` 320x180 15 fps ~150 kbit/s), so publishing costs next to nothing,
and subscribes as a page with a filmstrip of 9 thumbnails would: `view` with the
active speaker (or the first other participant) in the main window at 1000 px
and 9 others at 200 px (bench/meeting_clients.py). The baseline rooms are
today's behaviour: clients that never send `view` and publish no `camera-low`
receive everyone at full quality.

Over a steady window it measures the backend's CPU (user+sys of the `visio serve`
process and of the media workers it started, `python -m visio_rooms`, % of one
core, /proc), the video streams forwarded (receiver slots whose frames rose),
frames/s per main window and per thumbnail (median and min over receivers, a
missing stream counting 0) and the video kbit/s each receiver gets (encoded
payload, median and max).

The clients must not be the bottleneck: they run in several processes with an
event loop each. Per run the bench prints their CPU, how late their loops wake
up, the UDP packets the kernel dropped at each side's sockets (/proc/net/udp),
lost connections and the machine's busy share; a run where the clients fell
behind is marked LIMITED BY THE CLIENTS. The largest size where both sides held
then gives the backend's CPU per participant and the P=50 figure it implies,
printed as an extrapolation.

    .venv/bin/python -m bench.meeting [--sizes 10,25,50] [--baseline 10,15] [--seconds 10]
    .venv/bin/python -m bench.meeting --quick      # smoke run: tiny rooms, short window
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cores import socket_drops  # noqa: E402
from bench.meeting_clients import Config, worker_main  # noqa: E402
from bench.sfu import book, cpu_seconds  # noqa: E402
from bench.sfu_clip import FPS, LOW_FPS, clip_kbps, encode_clip, encode_low_clip  # noqa: E402

TARGET_CPU, TARGET_MAIN_FPS, TARGET_TILE_FPS, TARGET_KBPS, TARGET_RATIO = 90, 29, 14, 2500, 4
SATURATED = 90.0  # % of a core: a client process this busy is the bottleneck
LAGGING = 0.02  # s: mean lateness of a client loop's wake-ups that means it is behind
MACHINE_FULL = 95.0  # % of all cores busy (others' load included): no CPU left for anyone


def machine_busy() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def udp_drops(pid: int) -> int:
    """Packets the kernel dropped because `pid` read its UDP sockets too slowly
    (the `drops` column of /proc/net/udp*, summed over the sockets it holds)."""
    return sum(socket_drops(pid).values())


def media_workers(pid: int) -> list[int]:
    """The media workers `visio serve` (`pid`) started: its children `python -m visio_rooms`,
    which hold the live rooms and their media sockets since VISIO_MEDIA_WORKERS."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):  # gone meanwhile
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if ppid == pid and b"-m" in argv and b"visio_rooms" in argv:
                found.append(int(entry.name))
    return sorted(found)


def backend_pids(pid: int) -> list[int]:
    """The front (`visio serve`) and its media workers: the backend whose CPU counts."""
    return [pid, *media_workers(pid)]


@dataclass
class Run:
    mode: str  # "views" | "baseline"
    size: int
    backend: float = 0.0  # % of one core
    machine: float = 0.0  # % of all cores
    streams: int = 0
    expected: int = 0
    extra: int = 0  # streams received that the view did not ask for
    main_fps: list[float] = field(default_factory=list)  # one per receiver
    tile_fps: list[float] = field(default_factory=list)  # one per thumbnail asked for
    kbps: list[float] = field(default_factory=list)  # one per receiver
    clients: list[float] = field(default_factory=list)  # % of a core, per client process
    lag: float = 0.0  # worst mean loop lag of a client process, s
    layered: bool = False  # the server's slots carry `layer` (it knows `view`)
    main_low: int = 0  # receivers whose main window got the low layer (weak link rule)
    high_on: int = 0  # publishers told to keep sending their high layer
    low_on: int = 0
    settled: int = 0
    problems: int = 0  # lines the server logged at WARNING or worse during the run
    gave_up: int = 0  # subscribe renegotiations the server gave up (a page would reconnect)
    lost: tuple[int, int] = (0, 0)  # publish, subscribe connections not connected at the end
    backend_drops: int = 0  # UDP packets lost because the backend read too slowly
    client_drops: int = 0  # same, all client processes

    def limits(self) -> list[str]:
        """Why the client side may not have kept up (empty: it did)."""
        out = []
        if any(c > SATURATED for c in self.clients):
            out.append(f"a client process over {SATURATED:.0f}% of a core")
        if self.lag > LAGGING:
            out.append("client event loops late")
        if self.machine > MACHINE_FULL:
            out.append("no idle CPU left on the machine")
        tile_source = LOW_FPS if self.mode == "views" else FPS
        over = max(self.main_fps, default=0) / FPS, max(self.tile_fps, default=0) / tile_source
        if max(over) > 1.1:  # more frames than the clips send: receivers drained a backlog
            out.append("frame rates above the sources'")
        if self.client_drops > 0:
            out.append(f"{self.client_drops} packets dropped at their sockets")
        return out

    @property
    def client_limited(self) -> bool:
        return bool(self.limits())

    @property
    def server_holds(self) -> bool:
        return (
            self.backend <= TARGET_CPU
            and self.backend_drops == 0
            and not any(self.lost)
            and self.streams >= self.expected
            and min(self.main_fps, default=0) >= TARGET_MAIN_FPS
            and min(self.tile_fps, default=TARGET_TILE_FPS) >= TARGET_TILE_FPS
        )


class Clients:
    """The client processes of one room."""

    def __init__(self, cfgs: list[Config]) -> None:
        ctx = mp.get_context("spawn")
        self.procs: list[Any] = []
        self.conns: list[Any] = []
        for cfg in cfgs:
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, cfg), daemon=True)
            proc.start()
            self.procs.append(proc)
            self.conns.append(parent)

    def ask(self, command: tuple[Any, ...] | None, timeout: float) -> list[dict[str, Any]]:
        if command is not None:
            for conn in self.conns:
                conn.send(command)
        answers = []
        for conn, proc in zip(self.conns, self.procs, strict=True):
            if not conn.poll(timeout):
                raise TimeoutError(f"client process {proc.pid} did not answer {command}")
            answer = conn.recv()
            if "error" in answer:
                raise RuntimeError(f"client process {proc.pid} failed:\n{answer['error']}")
            answers.append(answer)
        return answers

    def cpu(self) -> list[float]:
        return [sum(cpu_seconds(p.pid)) for p in self.procs]

    def drops(self) -> int:
        return sum(udp_drops(p.pid) for p in self.procs)

    def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):  # already gone
                conn.send(("quit",))
        for proc in self.procs:
            proc.join(30)
            if proc.is_alive():
                proc.kill()
                proc.join()


def measure(run: Run, first: list[dict[str, Any]], last: list[dict[str, Any]]) -> None:
    """Fill `run` with the receivers' figures between two samples of every process."""
    for a, b in zip(first, last, strict=True):
        dt = b["t"] - a["t"]
        for ca, cb in zip(a["clients"], b["clients"], strict=True):
            main = kbits = 0.0
            tiles: list[float] = []
            for s in cb["slots"]:
                frames = s["frames"] - ca["frames"].get(s["mid"], 0)
                if frames <= 0:
                    continue
                run.streams += 1
                kbits += (s["bytes"] - ca["bytes"].get(s["mid"], 0)) * 8 / 1000
                if run.mode == "baseline":
                    is_main = s["role"] == "main"
                else:
                    is_main = s["participant"] == cb["main"]
                    run.extra += not is_main and s["participant"] not in cb["tiles"]
                if is_main:
                    main += frames / dt
                    run.main_low += s.get("layer") == "low"
                else:
                    tiles.append(frames / dt)
            wanted = len(cb["tiles"]) if run.mode == "views" else run.size - 2
            tiles += [0.0] * (wanted - len(tiles))  # a thumbnail that got nothing
            run.main_fps.append(main)
            run.tile_fps.extend(sorted(tiles, reverse=True)[: max(wanted, 0)])
            run.kbps.append(kbits / dt)
            run.layered = run.layered or any("layer" in s for s in cb["slots"])
            pub, sub = (not state.startswith("connected") for state in cb["pcs"])
            run.lost = (run.lost[0] + pub, run.lost[1] + sub)
            run.high_on += cb["layers"]["high"]
            run.low_on += cb["layers"]["low"]


def run_room(
    stack: Any, mode: str, size: int, args: argparse.Namespace, clips: tuple[list[bytes], ...]
) -> Run:
    assert stack.proc is not None
    token = book(stack)  # a fresh room: nobody left over from the previous size
    processes = min(size, max(1, math.ceil(size / args.per_process)))
    counts = [size // processes + (i < size % processes) for i in range(processes)]
    cfgs = [
        Config(stack.web_url, token, n, sum(counts[:i]), mode == "views", args.thumbnails, *clips)
        for i, n in enumerate(counts)
    ]
    run = Run(mode, size)
    log_before = stack.log_text()
    clients = Clients(cfgs)
    try:
        clients.ask(None, timeout=180)  # everyone in and publishing
        run.settled = sum(a["settled"] for a in clients.ask(("settle", size, 90.0), 150))
        time.sleep(2.0)  # past the keyframe bursts of the last joins
        pids = backend_pids(stack.proc.pid)  # the media (and their sockets) are in the workers
        d0 = sum(map(udp_drops, pids)), clients.drops()
        b0 = sum(sum(cpu_seconds(p)) for p in pids)
        c0, m0, t0 = clients.cpu(), machine_busy(), time.monotonic()
        first = clients.ask(("sample",), 60)
        time.sleep(args.seconds)
        last = clients.ask(("sample",), 60)
        b1 = sum(sum(cpu_seconds(p)) for p in pids)
        c1, m1, t1 = clients.cpu(), machine_busy(), time.monotonic()
        run.backend_drops = sum(map(udp_drops, pids)) - d0[0]
        run.client_drops = clients.drops() - d0[1]
    finally:
        clients.close()
    run.backend = 100 * (b1 - b0) / (t1 - t0)
    run.clients = [100 * (y - x) / (t1 - t0) for x, y in zip(c0, c1, strict=True)]
    run.machine = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    run.lag = max(a["lag"] for a in last)
    log = stack.log_text()[len(log_before) :]
    run.gave_up = log.count("routing to")
    run.problems = sum(1 for line in log.splitlines() if " WARNING " in line or " ERROR " in line)
    run.expected = size * (min(size - 1, args.thumbnails + 1) if mode == "views" else size - 1)
    measure(run, first, last)
    return run


def med_min(values: list[float]) -> str:
    if not values:
        return "    -     "
    return f"{statistics.median(values):4.1f}/{min(values):4.1f}"


def row(r: Run) -> str:
    kbps = f"{statistics.median(r.kbps):5.0f}/{max(r.kbps):5.0f}" if r.kbps else "    -"
    clients = " ".join(f"{c:.0f}" for c in r.clients)
    flags = []
    if r.client_limited:
        flags.append("LIMITED BY THE CLIENTS (" + ", ".join(r.limits()) + ")")
    if r.backend_drops > 0:
        flags.append(f"BACKEND dropped {r.backend_drops} packets at its sockets")
    elif r.backend_drops < 0:  # a closed socket takes its count with it
        flags.append("BACKEND closed connections during the window")
    if any(r.lost):
        flags.append(f"connections lost: {r.lost[0]} publish, {r.lost[1]} subscribe")
    if r.gave_up:
        flags.append(f"server gave up {r.gave_up} renegotiations (these clients never reconnect)")
    if r.problems:
        flags.append(f"server logged {r.problems} warnings/errors (--log)")
    if r.settled < r.size:
        flags.append(f"only {r.settled}/{r.size} settled")
    if r.main_low:
        flags.append(f"{r.main_low} main windows on the low layer")
    if r.mode == "views" and r.extra:
        flags.append(f"{r.extra} streams not asked for")
    return (
        f"{r.mode:8} {r.size:3} {r.backend:6.1f}% {r.streams:5}/{r.expected:<5}"
        f" {med_min(r.main_fps):>10} {med_min(r.tile_fps):>10} {kbps:>12}"
        f"  {r.high_on:3}/{r.low_on:<3} {r.lag * 1000:5.0f} {r.machine:4.0f}%  [{clients}]"
        + (f"  {'; '.join(flags)}" if flags else "")
    )


HEADER = (
    "mode       P  backend  streams     main fps  thumb fps  kbit/s/recv"
    "  hi/lo on  lag ms  mach  clients %/process\n"
    "                       got/expect  med/min    med/min    med/max"
)


def summary(runs: dict[tuple[str, int], Run], sizes: list[int], baseline: list[int]) -> None:
    print()
    views = [runs[("views", p)] for p in sizes if ("views", p) in runs]
    if views and not any(r.layered for r in views):
        print(
            "NOTE: the server's slots carry no `layer`: it does not know `view` yet, so the"
            " 'views' rooms above are everyone-receives-everyone too."
        )
    big = max(views, key=lambda r: r.size, default=None)
    if big is not None:
        kbps = max(big.kbps, default=0.0)
        print(
            f"P={big.size}: backend {big.backend:.1f}% of a core (target <= {TARGET_CPU}),"
            f" main windows {min(big.main_fps, default=0):.1f} fps min (>= {TARGET_MAIN_FPS}),"
            f" thumbnails {min(big.tile_fps, default=0):.1f} fps min (>= {TARGET_TILE_FPS}),"
            f" receivers {kbps / 1000:.2f} Mbit/s max (<= {TARGET_KBPS / 1000})"
        )
        holds = big.server_holds and kbps <= TARGET_KBPS
        verdict = "holds" if holds else "does NOT hold"
        if big.client_limited:
            verdict += ", but the clients were limited: " + ", ".join(big.limits())
        print(f"P={big.size}: {verdict}")
    for p in baseline:
        b, v = runs.get(("baseline", p)), runs.get(("views", p))
        if b and v and v.backend > 0:
            limited = b.client_limited or v.client_limited
            print(
                f"P={p}: everyone-receives-everyone costs {b.backend:.1f}% of a core, with views"
                f" {v.backend:.1f}%: {b.backend / v.backend:.1f}x (target >= {TARGET_RATIO}x)"
                + (" (limited by the clients)" if limited else "")
            )
    held = [r for r in views if r.server_holds and not r.client_limited]
    if big is not None and (big.client_limited or not big.server_holds):
        if held:
            h = max(held, key=lambda r: r.size)
            per = h.backend / h.size
            print(
                f"largest P where both sides held: {h.size}: backend {per:.2f}% of a core per"
                f" participant; EXTRAPOLATION to P=50: {per * 50:.0f}% of a core (assumes"
                " linear growth: each receiver gets a main window and the thumbnails, whatever P)"
            )
        else:
            print("no room size held on both sides: nothing to extrapolate from")
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10,25,50", help="rooms with views")
    parser.add_argument("--baseline", default="10,15", help="rooms receiving everyone")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady window")
    parser.add_argument("--thumbnails", type=int, default=9)
    parser.add_argument("--per-process", type=int, default=8, help="clients per process")
    parser.add_argument("--log", type=Path, help="keep the server's log there")
    parser.add_argument("--quick", action="store_true", help="smoke run: 4 and 6, 4 s")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.baseline, args.seconds = "4,6", "4,6", 4.0
    baseline = [int(x) for x in args.baseline.split(",") if x]
    # Views rooms at the baseline sizes too, for the ratio.
    sizes = sorted({int(x) for x in args.sizes.split(",") if x} | set(baseline))

    from tests.support.stack import Stack

    high, low = encode_clip(), encode_low_clip()
    print(
        f"clips: high {clip_kbps(high):.0f} kbit/s, low {clip_kbps(low, LOW_FPS):.0f} kbit/s;"
        f" load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores",
        flush=True,
    )
    runs: dict[tuple[str, int], Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        # Every client comes from 127.0.0.1 (lift the per-address socket cap) and a
        # room fills within seconds: the answers to the server's many offers of that
        # ramp must not hit the per-socket message rate (README, Limits).
        env = {
            "VISIO_ROOM_CAPACITY": str(max(sizes) + 10),
            "VISIO_SOCKETS_PER_ADDRESS": "1000",
            "VISIO_RATE_OTHER": "10000/10",
        }
        stack = Stack(Path(tmp) / "stack", extra_env=env)
        try:
            stack.start()  # inside the try: a start that times out still stops the server
            print(HEADER, flush=True)
            plan = [("views", p) for p in sizes] + [("baseline", p) for p in baseline]
            for mode, p in plan:
                try:
                    runs[(mode, p)] = r = run_room(stack, mode, p, args, (high, low))
                    print(row(r), flush=True)
                except (TimeoutError, RuntimeError) as e:  # the other sizes still count
                    print(f"{mode:8} {p:3} FAILED: {e}", flush=True)
        finally:
            stack.stop()
            if args.log and (Path(tmp) / "stack" / "serve.log").exists():
                shutil.copy(Path(tmp) / "stack" / "serve.log", args.log)
    summary(runs, sizes, baseline)


if __name__ == "__main__":
    main()
