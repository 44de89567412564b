"""Media workers: does a second worker double what one node forwards at full frame rate?

One invocation, on this machine, two measures.

1. The issue's protocol: `visio serve` with VISIO_MEDIA_WORKERS=1, then 2; each time
   two rooms at once, each of the size one worker holds at full frame rate; with 2
   workers the least-loaded placement must put them apart, which the bench reads in
   the serve log ("room X placed on worker-N (pid P)"). Result: video streams at
   full rate with 2 workers over those with 1, against a 1.7x target. An overloaded
   worker now degrades every stream a little (it no longer collapses), so with 1
   worker few streams stay above 90 % of their rate and that ratio overstates the
   gain; it is printed with the frames/s ratio, which does not.
2. Capacity: the largest load each node holds with every stream at full rate. One
   worker: the calibration below (one room). Two workers: two rooms of Q, one per
   worker, Q raised (or lowered) by --step from the protocol's size until it is
   not held (or is). Result: streams held with 2 workers over streams held with 1.

Cores (bench/cores.py, sched_setaffinity on every thread, as `taskset -a -p`): each
worker runs on a core of its own. With 1 worker the front and every client process
run on the other core, so the calibration and phase 1 measure a worker that has a
whole core and clients that have one too. With 2 workers there is no core left:
the clients run on both cores, next to the workers, and what they take is measured
and subtracted in the verdict's "why" line (what 200 % can forward at the costs
measured, with the clients there and without them).

Size: `--size P`, or a calibration on the 1-worker stack: one room at each of the
`--calibrate` sizes, the largest that one worker holds (every stream at full rate,
the worker under 90 % of its core, nothing dropped at its sockets; a size not
held is tried once more, whatever the reason) before the first it does not.

Participants are bench/meeting.py's: pre-encoded cameras (`camera` 640x480 30 fps,
`camera-low` 320x180 15 fps, a layer nobody gets paused at its sender), each page a
main window and 9 thumbnails (`view`). A receiver slot is *at full rate* when its
frames/s over the window reach 90 % of its source's: 27 in a main window (high
layer), 13.5 in a thumbnail (low layer); a slot that got nothing, or a main window
moved to the low layer, is not. Backend CPU: user+sys (/proc) of the front
(`visio serve`) and of each worker (its children `python -m visio_rooms`, named by
their command line), % of one core, and the UDP packets dropped at their sockets;
each core's busy share (/proc/stat, everyone's work) and other jobs' CPU (the
machine's busy time minus ours).

The clients are measured: receivers are bench/lean_receive.LeanClient by default:
real WebRTC clients (ICE, DTLS, signalling, renegotiation) that drain their sockets
every 50 ms and count video packets from the clear RTP header (frames by the marker
bit) instead of decrypting them, and send no NACK/PLI/REMB (`--receiver aiortc`:
the stock path, ~3x dearer). They run `--per-process` to a process, an event loop
each. Per phase the bench prints their CPU (user+sys of each client process,
threads included), how late their loops wake up (worst process's mean), the UDP
packets dropped at their sockets, and their CPU per 100 streams next to the
workers'. A phase where a client process nears a full core, a loop is late, a
client socket drops packets, or the machine has no idle CPU is marked LIMITED BY
THE CLIENTS (bench/meeting.Run.limits): its slow streams may be the clients' doing.

    .venv/bin/python -m bench.workers [--size P | --calibrate 40,50,...] [--seconds 10]
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
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cores  # noqa: E402
from bench.meeting import Clients, Run, machine_busy, measure, media_workers  # noqa: E402
from bench.meeting_clients import Config  # noqa: E402
from bench.sfu import book, cpu_seconds  # noqa: E402
from bench.sfu_clip import LOW_FPS, clip_kbps, encode_clip, encode_low_clip  # noqa: E402
from bench.workers_report import (  # noqa: E402
    HEADER,
    ROOMS,
    Phase,
    capacities,
    chosen,
    show,
    verdict,
)

CAPACITY = 500  # VISIO_ROOM_CAPACITY: the bench decides the sizes
PLACED = re.compile(r"room (\S+) placed on (worker-\d+) \(pid (\d+)\)")


def backend(serve_pid: int) -> dict[str, int]:
    """name -> pid: the front, then each worker by the NAME of its command line."""
    named = {"front": serve_pid}
    for pid in media_workers(serve_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
            named[argv[-1].decode()] = pid
    return named


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
    phase.lean = args.receiver == "lean"
    for cfg in cfgs:
        cfg.lean = phase.lean
    log_before = len(stack.log_text())
    phase.load = os.getloadavg()[0]
    began = time.monotonic()
    clients = Clients(cfgs)
    for proc in clients.procs:  # before they start their threads and connections
        cores.pin(proc.pid, args.layout.rest)
    room_of = [i // per_room for i in range(len(cfgs))]
    try:
        # Everyone in and publishing: joins are slow on an overloaded worker (each one
        # renegotiates with everyone), so this waits long, and says how long it took.
        room_of = admit(clients, room_of, cfgs, phase, deadline=began + 600)
        phase.filled = time.monotonic() - began
        settled = [a["settled"] for a in clients.ask(("settle", size, 90.0), 150)]
        time.sleep(2.0)  # past the keyframe bursts of the last joins
        procs = backend(stack.proc.pid)
        pids = [p.pid for p in clients.procs]
        d0 = {k: cores.socket_drops(p) for k, p in procs.items()}
        e0 = [cores.socket_drops(p) for p in pids]
        b0 = {k: sum(cpu_seconds(p)) for k, p in procs.items()}
        c0, m0, t0 = clients.cpu(), machine_busy(), time.monotonic()
        k0 = cores.busy()
        first = clients.ask(("sample",), 60)
        time.sleep(args.seconds)
        last = clients.ask(("sample",), 60)
        try:
            b1 = {k: sum(cpu_seconds(p)) for k, p in procs.items()}
        except OSError as e:  # a worker died (and was replaced) during the window
            raise RuntimeError(f"a backend process exited during the window: {e}") from e
        c1, m1, t1 = clients.cpu(), machine_busy(), time.monotonic()
        k1 = cores.busy()
        d1 = {k: cores.socket_drops(p) for k, p in procs.items()}
        e1 = [cores.socket_drops(p) for p in pids]
    finally:
        clients.close()
    phase.cpu = {k: 100 * (b1[k] - b0[k]) / (t1 - t0) for k in procs}
    phase.drops = {k: cores.dropped(d0[k], d1[k]) for k in procs}
    phase.machine = 100 * (m1[0] - m0[0]) / max(1, m1[1] - m0[1])
    phase.cores = cores.busy_share(k0, k1)
    phase.pinning = args.layout.describe()
    phase.rest, phase.apart = args.layout.rest, args.layout.clients_apart
    log = stack.log_text()[log_before:]
    phase.placed = [(m[1], m[2], int(m[3])) for m in PLACED.finditer(log)]
    for room in range(count):
        idx = [i for i, r in enumerate(room_of) if r == room]
        run = Run("views", size)
        run.settled = sum(settled[i] for i in idx)
        run.clients = [100 * (c1[i] - c0[i]) / (t1 - t0) for i in idx]
        run.client_drops = sum(cores.dropped(e0[i], e1[i]) for i in idx)
        run.lag = max((last[i]["lag"] for i in idx), default=0.0)
        run.machine = phase.machine
        run.expected = size * min(size - 1, args.thumbnails + 1)
        measure(run, [first[i] for i in idx], [last[i] for i in idx])
        # Those who never got in were served nothing: their slots count as not at full rate.
        out = size - sum(cfgs[i].count for i in idx)
        run.main_fps += [0.0] * out
        run.tile_fps += [0.0] * (out * min(size - 2, args.thumbnails))
        phase.rooms.append(run)
    problems = [line for line in log.splitlines() if " WARNING " in line or " ERROR " in line]
    # The log is the node's: counted once, on the first room.
    phase.rooms[0].gave_up, phase.rooms[0].problems = log.count("routing to"), len(problems)


def admit(
    clients: Clients, room_of: list[int], cfgs: list[Config], phase: Phase, deadline: float
) -> list[int]:
    """Wait for every client process to be in and publishing; one that failed (or is not
    in by `deadline`) is stopped and its participants left out: room_of of those kept."""
    kept = []
    for i, (conn, proc) in enumerate(zip(list(clients.conns), list(clients.procs), strict=True)):
        answer = conn.recv() if conn.poll(max(0.0, deadline - time.monotonic())) else None
        if answer is not None and "error" not in answer:
            kept.append(i)
            continue
        reason = "not in by the deadline" if answer is None else answer["error"].splitlines()[-1]
        phase.out.append(f"{cfgs[i].count} of room {ROOMS[room_of[i]]} ({reason})")
        proc.kill()
        proc.join()
    clients.conns = [clients.conns[i] for i in kept]
    clients.procs = [clients.procs[i] for i in kept]
    for i in sorted(set(range(len(cfgs))) - set(kept), reverse=True):
        del cfgs[i]
    return [room_of[i] for i in kept]


def start(workers: int, size: int, tmp: Path, args: argparse.Namespace, pin: bool = True) -> Any:
    """`visio serve` with `workers` media workers, all serving; with `pin`, each worker on
    a core of its own and the front on the rest (bench/cores.py: args.layout)."""
    from tests.support.stack import Stack, wait_for

    env = {
        "VISIO_MEDIA_WORKERS": str(workers),
        # As bench/meeting.py: every client comes from 127.0.0.1 and a room fills in seconds.
        "VISIO_ROOM_CAPACITY": str(size),
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
        args.layout = cores.layout(workers if pin else 0)
        named = backend(stack.proc.pid)
        cores.pin(named.pop("front"), args.layout.rest)
        for i, cpus in enumerate(args.layout.workers):
            cores.pin(named[f"worker-{i + 1}"], cpus)
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


def calibrate(stack: Any, args: argparse.Namespace) -> Phase | None:
    """The largest size one worker holds alone (None: not even the smallest)."""
    print(f"calibration: one room on one worker, sizes {sizes(args)}", flush=True)
    print(HEADER, flush=True)
    best = None
    for size in sizes(args):
        for attempt in (1, 2):
            phase = Phase(1, size)
            try:
                run_rooms(stack, phase, 1, args)
            except (TimeoutError, RuntimeError) as e:
                print(f"{'cal':>7}    A {size:3} FAILED: {e}", flush=True)
                return best
            show(phase, "cal")
            if phase.holds() or attempt == 2:
                break
            # Once more whatever the reason: now and then a thumbnail of a room gets
            # nothing for a whole window (seen at 50 and 60, not at CPU's limit).
            print(f"{'':>7} not held: once more", flush=True)
        if not phase.holds():
            break
        best = phase
    return best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help="participants per room (default: calibrate)")
    parser.add_argument("--calibrate", default="40,50,60,70,80,90,100", help="sizes to try")
    parser.add_argument("--seconds", type=float, default=10.0, help="steady window")
    parser.add_argument("--thumbnails", type=int, default=9)
    parser.add_argument("--per-process", type=int, default=8, help="clients per process")
    parser.add_argument("--receiver", choices=("lean", "aiortc"), default="lean")
    parser.add_argument("--log", type=Path, help="keep the serve logs in this folder")
    parser.add_argument("--quick", action="store_true", help="smoke run: rooms of 4, 4 s")
    parser.add_argument("--step", type=int, default=10, help="capacity search step")
    parser.add_argument("--max-size", type=int, default=150, help="capacity search bound")
    parser.add_argument("--no-capacity", action="store_true", help="skip the capacity search")
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
    print(
        f"cores: {cores.layout(1).describe()} (1 worker); {cores.layout(2).describe()} (2 workers)",
        flush=True,
    )
    phases: dict[int, Phase] = {}
    cal = held = None
    with tempfile.TemporaryDirectory() as tmp:
        stack = start(1, CAPACITY, Path(tmp), args)
        try:
            if args.size is None:
                cal = calibrate(stack, args)
                args.size = cal.size if cal else min(sizes(args))
                if cal is None:
                    print(f"no size held: the smallest, {args.size}, is used", flush=True)
                else:
                    chosen(cal)
            print(HEADER, flush=True)
            phases[1] = phase(stack, 1, args.size, args)
        finally:
            stop(stack, args, 1)
        stack = start(2, CAPACITY, Path(tmp), args)
        try:
            phases[2] = phase(stack, 2, args.size, args)
            if not args.quick and not args.no_capacity:
                held = capacity(stack, args, phases[2])
        finally:
            stop(stack, args, 2)
    verdict(phases[1], phases[2])
    if cal is not None and not args.no_capacity:
        capacities(cal, held)
    if args.quick:
        print("(smoke run: rooms this small do not load a worker; the ratio means nothing)")
    if any(p.failed for p in phases.values()):
        sys.exit(1)


def sizes(args: argparse.Namespace) -> list[int]:
    return sorted(int(x) for x in args.calibrate.split(",") if x)


def phase(stack: Any, workers: int, size: int, args: argparse.Namespace) -> Phase:
    """Two rooms of `size` on this stack, measured and printed."""
    p = Phase(workers, size)
    try:
        run_rooms(stack, p, 2, args)
        show(p)
    except (TimeoutError, RuntimeError) as e:
        p.failed = why(e)
        print(f"{workers:>7} FAILED: {p.failed}", flush=True)
    return p


def capacity(stack: Any, args: argparse.Namespace, first: Phase) -> Phase | None:
    """With 2 workers: the largest Q (steps of --step) such that two rooms of Q, one per
    worker, are held at full rate; starts from `first` (two rooms of its size)."""
    print(f"capacity with 2 workers: two rooms of Q, steps of {args.step}", flush=True)
    best = first if first.holds() else None
    step = args.step if best else -args.step
    size = first.size + step
    while args.step <= size <= args.max_size:
        p = phase(stack, 2, size, args)
        if step > 0:  # up from a size held: until one is not
            if not p.holds():
                break
            best = p
        elif p.holds():  # down from a size not held: until one is
            best = p
            break
        size += step
    return best


def why(error: Exception) -> str:
    """One line for a phase that could not be measured (client tracebacks are on stderr)."""
    text = str(error)
    if "ws_connect" in text and "TimeoutError" in text:
        return "a client's signalling socket was not answered in time (it gave up)"
    if "did not answer None" in text:
        return "the clients were not all in and publishing after 600 s"
    return text.splitlines()[0] + (f" ... {text.splitlines()[-1]}" if "\n" in text else "")


if __name__ == "__main__":
    main()
