"""Media workers: does a second worker double what one node forwards at full frame rate?

One invocation, on this machine: `visio serve` with VISIO_MEDIA_WORKERS=1, then 2.
Each time two rooms run at once, each of the size one worker holds at full frame
rate; with 2 workers the least-loaded placement must put them apart, which the
bench reads in the serve log ("room X placed on worker-N (pid P)"). Result: video
streams at full rate with 2 workers over those with 1, against a 1.7x target.

Size: `--size P`, or a calibration on the 1-worker stack: one room at each of the
`--calibrate` sizes, the largest that one worker holds (every stream at full rate,
the worker under 90 % of a core, nothing dropped at its sockets; a size failed
while the clients were limited is tried once more) before the first it does not.
The default sizes stop at 50, the default VISIO_ROOM_CAPACITY and the room
bench/meeting.py sizes one core for.

Participants are bench/meeting.py's: pre-encoded cameras (`camera` 640x480 30 fps,
`camera-low` 320x180 15 fps, a layer nobody gets paused at its sender), each page a
main window and 9 thumbnails (`view`). A receiver slot is *at full rate* when its
frames/s over the window reach 90 % of its source's: 27 in a main window (high
layer), 13.5 in a thumbnail (low layer); a slot that got nothing, or a main window
moved to the low layer, is not. Backend CPU: user+sys (/proc) of the front
(`visio serve`) and of each worker (its children `python -m visio_rooms`, named by
their command line), % of one core, and the UDP packets dropped at their sockets.

The clients share the 2 cores, so they are kept cheap, and measured. Publishing
costs next to nothing (pre-encoded clips, the backend's lean sender). Receiving
with aiortc costs a client ~3x what the worker spends forwarding (bench/meeting.py:
80 % of a core of clients for a room that takes 26 % on the server): it would eat
the second worker's core. So receivers are bench/lean_receive.LeanClient by
default: real WebRTC clients (ICE, DTLS, signalling, renegotiation) that drain
their sockets every 50 ms and count video packets from the clear RTP header
(frames by the marker bit) instead of decrypting and reassembling them, and send
no NACK/PLI/REMB (`--receiver aiortc`: the stock path). They run `--per-process`
to a process, an event loop each. Per phase the bench prints the clients' CPU
(user+sys of each client process, threads included, /proc), how late their loops
wake up (worst process's mean), the UDP packets dropped at their sockets, the
machine's busy share (everyone's, other jobs included), and the clients' CPU per
100 streams next to the workers'. A phase where a client process nears a full
core, a loop is late, a client socket drops packets, frame rates exceed the
sources' or the machine has no idle CPU is marked LIMITED BY THE CLIENTS
(bench/meeting.Run.limits): its slow streams may be the clients' doing.

What that means for the result: even lean, the clients cost about half of what
the workers do, on the same 2 cores. Two workers get at most 200 % - clients -
front (- other jobs), so the ratio is that of two workers on what the clients
leave; when the 2-worker phase falls short the bench prints that share.

    .venv/bin/python -m bench.workers [--size P | --calibrate 20,30,40,50] [--seconds 10]
    .venv/bin/python -m bench.workers --quick     # smoke run: rooms of 4, 4 s windows
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.meeting import (  # noqa: E402
    TARGET_CPU,
    Clients,
    Run,
    machine_busy,
    measure,
    med_min,
    media_workers,
    udp_drops,
)
from bench.meeting_clients import Config  # noqa: E402
from bench.sfu import book, cpu_seconds  # noqa: E402
from bench.sfu_clip import FPS, LOW_FPS, clip_kbps, encode_clip, encode_low_clip  # noqa: E402

TARGET_RATIO = 1.7
FULL = 0.9  # a slot at >= 90 % of its source's frame rate is at full rate
PLACED = re.compile(r"room (\S+) placed on (worker-\d+) \(pid (\d+)\)")
ROOMS = "AB"


def backend(serve_pid: int) -> dict[str, int]:
    """name -> pid: the front, then each worker by the NAME of its command line."""
    named = {"front": serve_pid}
    for pid in media_workers(serve_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            named[argv[-1].decode()] = pid
    return named


def full_rate(run: Run) -> int:
    """Receiver slots at full rate (measure() lists a slot that got nothing as 0)."""
    return sum(f >= FULL * FPS for f in run.main_fps) + sum(
        f >= FULL * LOW_FPS for f in run.tile_fps
    )


@dataclass
class Phase:
    workers: int
    size: int
    rooms: list[Run] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of a core
    drops: dict[str, int] = field(default_factory=dict)  # process -> UDP packets dropped
    placed: list[tuple[str, str, int]] = field(default_factory=list)  # room, worker, pid
    machine: float = 0.0
    load: float = 0.0  # load average (1 min) before the phase

    @property
    def full(self) -> int:
        return sum(map(full_rate, self.rooms))

    @property
    def expected(self) -> int:
        return sum(r.expected for r in self.rooms)

    @property
    def received(self) -> int:
        return sum(r.streams for r in self.rooms)

    @property
    def clients(self) -> list[float]:
        return [c for r in self.rooms for c in r.clients]

    @property
    def workers_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    def limits(self) -> list[str]:
        return list(dict.fromkeys(x for r in self.rooms for x in r.limits()))

    def holds(self) -> bool:
        """Calibration: one worker forwards every stream at full rate, with margin. (Busy
        clients or machine do not matter when every stream made it anyway.)"""
        return (
            self.full >= self.expected
            and self.workers_cpu <= TARGET_CPU
            and sum(v for k, v in self.drops.items() if k != "front") == 0
        )


def run_rooms(stack: Any, phase: Phase, count: int, args: argparse.Namespace) -> None:
    """`count` rooms of `phase.size` at once; fills `phase` over one steady window."""
    assert stack.proc is not None
    size = phase.size
    per_room = min(size, max(1, math.ceil(size / args.per_process)))
    counts = [size // per_room + (i < size % per_room) for i in range(per_room)]
    cfgs: list[Config] = []
    for _ in range(count):
        token = book(stack)  # fresh rooms: nobody left over from a previous run
        cfgs += [
            Config(stack.web_url, token, n, sum(counts[:i]), True, args.thumbnails, *args.clips)
            for i, n in enumerate(counts)
        ]
    for cfg in cfgs:
        cfg.lean = args.receiver == "lean"
    log_before = len(stack.log_text())
    phase.load = os.getloadavg()[0]
    clients = Clients(cfgs)
    try:
        clients.ask(None, timeout=240)  # everyone in and publishing
        settled = [a["settled"] for a in clients.ask(("settle", size, 90.0), 150)]
        time.sleep(2.0)  # past the keyframe bursts of the last joins
        procs = backend(stack.proc.pid)
        pids = [p.pid for p in clients.procs]
        d0 = {k: udp_drops(p) for k, p in procs.items()}, [udp_drops(p) for p in pids]
        b0 = {k: sum(cpu_seconds(p)) for k, p in procs.items()}
        c0, m0, t0 = clients.cpu(), machine_busy(), time.monotonic()
        first = clients.ask(("sample",), 60)
        time.sleep(args.seconds)
        last = clients.ask(("sample",), 60)
        try:
            b1 = {k: sum(cpu_seconds(p)) for k, p in procs.items()}
        except OSError as e:  # a worker died (and was replaced) during the window
            raise RuntimeError(f"a backend process exited during the window: {e}") from e
        c1, m1, t1 = clients.cpu(), machine_busy(), time.monotonic()
        d1 = {k: udp_drops(p) for k, p in procs.items()}, [udp_drops(p) for p in pids]
    finally:
        clients.close()
    phase.cpu = {k: 100 * (b1[k] - b0[k]) / (t1 - t0) for k in procs}
    phase.drops = {k: d1[0][k] - d0[0][k] for k in procs}
    phase.machine = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    log = stack.log_text()[log_before:]
    phase.placed = [(m[1], m[2], int(m[3])) for m in PLACED.finditer(log)]
    for room in range(count):
        idx = range(room * per_room, (room + 1) * per_room)
        run = Run("views", size)
        run.settled = sum(settled[i] for i in idx)
        run.clients = [100 * (c1[i] - c0[i]) / (t1 - t0) for i in idx]
        run.client_drops = sum(d1[1][i] - d0[1][i] for i in idx)
        run.lag = max(last[i]["lag"] for i in idx)
        run.machine = phase.machine
        run.expected = size * min(size - 1, args.thumbnails + 1)
        measure(run, [first[i] for i in idx], [last[i] for i in idx])
        phase.rooms.append(run)
    problems = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    # The log is the node's: counted once, on the first room.
    phase.rooms[0].gave_up, phase.rooms[0].problems = log.count("routing to"), len(problems)


def start(workers: int, size: int, tmp: Path, args: argparse.Namespace) -> Any:
    from tests.support.stack import Stack, wait_for

    env = {
        "VISIO_MEDIA_WORKERS": str(workers),
        # As bench/meeting.py: every client comes from 127.0.0.1 and a room fills in seconds.
        "VISIO_ROOM_CAPACITY": str(size + 10),
        "VISIO_SOCKETS_PER_ADDRESS": "1000",
        "VISIO_RATE_OTHER": "10000/10",
    }
    stack = Stack(tmp / f"stack-{workers}", extra_env=env)
    try:
        stack.start()  # ready once one worker serves: wait for all (placement needs them)
        wait_for(
            lambda: requests.get(stack.web_url + "healthz", timeout=2).json()["workers"] >= workers,
            timeout=120,
            what=f"{workers} media workers serving",
        )
    except BaseException:
        stack.stop()
        raise
    return stack


def stop(stack: Any, args: argparse.Namespace, workers: int) -> None:
    log = stack.data_dir / "serve.log"
    stack.stop()
    if args.log and log.exists():
        args.log.mkdir(parents=True, exist_ok=True)
        shutil.copy(log, args.log / f"serve-{workers}-workers.log")


def flags(phase: Phase) -> str:
    out = []
    if phase.limits():
        out.append("LIMITED BY THE CLIENTS (" + ", ".join(phase.limits()) + ")")
    dropped = {k: v for k, v in phase.drops.items() if v}
    if dropped:
        out.append("backend sockets dropped " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    r = phase.rooms[0] if phase.rooms else None
    if r is not None and r.gave_up:
        out.append(f"server gave up {r.gave_up} renegotiations")
    if r is not None and r.problems:
        out.append(f"server logged {r.problems} warnings/errors (--log)")
    unsettled = sum(x.size - x.settled for x in phase.rooms)
    if unsettled:
        out.append(f"{unsettled} participants never settled")
    lost = sum(sum(x.lost) for x in phase.rooms)
    if lost:
        out.append(f"{lost} connections lost")
    return "; ".join(out)


def show(phase: Phase, label: str = "") -> None:
    for i, r in enumerate(phase.rooms):
        print(
            f"{label or phase.workers:>7} {ROOMS[i]:>4} {phase.size:3}"
            f" {r.streams:5}/{r.expected:<5} {full_rate(r):5}"
            f" {med_min(r.main_fps):>10} {med_min(r.tile_fps):>10}"
            f" {sum(r.clients):5.0f}% {r.lag * 1000:4.0f}",
            flush=True,
        )
    placed = ", ".join(f"room {r[:8]} on {w} (pid {p})" for r, w, p in phase.placed)
    print(f"{'':>7} placed (serve log): {placed or 'none logged'}", flush=True)
    cpu = ", ".join(f"{k} {v:.1f}%" for k, v in phase.cpu.items())
    per = " ".join(f"{c:.0f}" for c in phase.clients)
    print(
        f"{'':>7} backend: {cpu}; clients {sum(phase.clients):.0f}% [{per}];"
        f" machine {phase.machine:.0f}% busy of {os.cpu_count()} cores;"
        f" load before {phase.load:.1f}",
        flush=True,
    )
    note = flags(phase)
    if note:
        print(f"{'':>7} {note}", flush=True)


HEADER = (
    "workers room   P  streams     full  main fps   thumb fps  clients lag\n"
    "                  got/expect  rate  med/min    med/min     %cpu   ms"
)


def calibrate(stack: Any, args: argparse.Namespace) -> Phase | None:
    """The largest size one worker holds alone (None: not even the smallest)."""
    sizes = sorted(int(x) for x in args.calibrate.split(",") if x)
    print(f"calibration: one room on one worker, sizes {sizes}", flush=True)
    print(HEADER, flush=True)
    best = None
    for size in sizes:
        for attempt in (1, 2):
            phase = Phase(1, size)
            try:
                run_rooms(stack, phase, 1, args)
            except (TimeoutError, RuntimeError) as e:
                print(f"{'cal':>7}    A {size:3} FAILED: {e}", flush=True)
                return best
            show(phase, "cal")
            if phase.holds() or not phase.limits() or attempt == 2:
                break
            print(f"{'':>7} the clients may have failed it: once more", flush=True)
        if not phase.holds():
            break
        best = phase
    return best


def chosen(cal: Phase) -> None:
    """What two rooms of the calibrated size should need, from the one-room figures."""
    total = 100 * (os.cpu_count() or 1)
    need = 2 * (cal.workers_cpu + sum(cal.clients) + cal.cpu.get("front", 0))
    print(
        f"size: {cal.size} per room: alone it took {cal.workers_cpu:.0f}% of a core on its"
        f" worker, {sum(cal.clients):.0f}% for its clients; two such rooms: about"
        f" {2 * cal.workers_cpu:.0f}% of worker CPU (one worker has 100%), {need:.0f}% in all"
        f" of the machine's {total}%",
        flush=True,
    )
    if 2 * cal.workers_cpu < 100:
        print(
            "NOTE: two such rooms may fit in one worker (no gain to expect); larger rooms"
            " (--calibrate ...,60,70) load it more, if the clients leave the machine room",
            flush=True,
        )


def fps(phase: Phase) -> float:
    """Video frames per second the receivers got, all slots together."""
    return sum(sum(r.main_fps) + sum(r.tile_fps) for r in phase.rooms)


def verdict(one: Phase, two: Phase) -> None:
    print()
    for p in (one, two):
        got = max(1, p.received)
        print(
            f"{p.workers} worker(s): {p.full}/{p.expected} streams at full rate, {p.received}"
            f" receiving anything, {fps(p):.0f} frames/s in all; workers {p.workers_cpu:.0f}%"
            f" of a core ({100 * p.workers_cpu / got:.1f}% per 100 streams), clients"
            f" {sum(p.clients):.0f}% ({100 * sum(p.clients) / got:.1f}% per 100 streams),"
            f" machine {p.machine:.0f}% busy"
        )
    spread = {w for _, w, _ in two.placed[: len(two.rooms)]}
    if len(spread) < len(two.rooms):
        print(f"PLACEMENT: with 2 workers the rooms went to {sorted(spread) or '?'}, not apart")
    met = two.full >= TARGET_RATIO * one.full and two.full > 0
    ratio = f"{two.full / one.full:.2f}x" if one.full else "no finite ratio (none with 1)"
    print(
        f"streams at full rate, 2 workers / 1 worker: {two.full}/{one.full} = {ratio}"
        f" (target >= {TARGET_RATIO}x): {'MET' if met else 'NOT MET'};"
        f" frames/s in all: {fps(two) / max(fps(one), 1e-9):.2f}x"
    )
    limited = [p for p in (one, two) if p.limits()]
    for p in limited:
        print(f"with {p.workers} worker(s) the clients were LIMITED: {', '.join(p.limits())}")
    if not limited:
        print("clients: not limiting in either phase (CPU, loop lag, socket drops, machine idle)")
    if two.full < two.expected:
        total = 100 * (os.cpu_count() or 1)
        others = sum(two.clients) + two.cpu.get("front", 0)
        print(
            f"with 2 workers {two.expected - two.full} streams were below full rate; the"
            f" clients and the front used {others:.0f}% of the machine's {total}%, leaving"
            f" the workers at most {total - others:.0f}% (they used {two.workers_cpu:.0f}%,"
            f" machine {two.machine:.0f}% busy, other jobs included)"
        )
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help="participants per room (default: calibrate)")
    parser.add_argument("--calibrate", default="20,30,40,50", help="sizes to try")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady window")
    parser.add_argument("--thumbnails", type=int, default=9)
    parser.add_argument("--per-process", type=int, default=8, help="clients per process")
    parser.add_argument("--receiver", choices=("lean", "aiortc"), default="lean")
    parser.add_argument("--log", type=Path, help="keep the serve logs in this folder")
    parser.add_argument("--quick", action="store_true", help="smoke run: rooms of 4, 4 s")
    args = parser.parse_args()
    if args.quick:
        args.size, args.seconds = args.size or 4, 4.0
    high, low = encode_clip(), encode_low_clip()
    args.clips = (high, low)
    print(
        f"clips: high {clip_kbps(high):.0f} kbit/s, low {clip_kbps(low, LOW_FPS):.0f} kbit/s;"
        f" receivers: {args.receiver}; load average {os.getloadavg()[0]:.1f}"
        f" on {os.cpu_count()} cores",
        flush=True,
    )
    phases: dict[int, Phase] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            size = args.size or max(int(x) for x in args.calibrate.split(",") if x)
            stack = start(workers, size, Path(tmp), args)
            try:
                if args.size is None:
                    cal = calibrate(stack, args)
                    if cal is None:
                        args.size = min(int(x) for x in args.calibrate.split(",") if x)
                        print(f"no size held: the smallest, {args.size}, is used", flush=True)
                    else:
                        args.size = cal.size
                        chosen(cal)
                if workers == 1:
                    print(HEADER, flush=True)
                phases[workers] = phase = Phase(workers, args.size)
                try:
                    run_rooms(stack, phase, 2, args)
                    show(phase)
                except (TimeoutError, RuntimeError) as e:
                    print(f"{workers:>7} FAILED: {e}", flush=True)
            finally:
                stop(stack, args, workers)
    if all(p.rooms for p in phases.values()):
        verdict(phases[1], phases[2])
        if args.quick:
            print("(smoke run: rooms this small do not load a worker; the ratio means nothing)")
    else:
        print("a phase failed: no ratio")
        sys.exit(1)


if __name__ == "__main__":
    main()
