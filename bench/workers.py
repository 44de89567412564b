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
The default sizes go past 50 (the default VISIO_ROOM_CAPACITY, which the
bench lifts as bench/meeting.py does): a room of 50 takes about half a core on its
worker here, so two of them nearly fit in one worker, which is not the load the
comparison needs. `--size 50` runs the largest rooms the product admits.

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

    .venv/bin/python -m bench.workers [--size P | --calibrate 30,40,50,60,70,80] [--seconds 10]
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

from bench.meeting import Clients, Run, machine_busy, measure, media_workers, udp_drops  # noqa: E402
from bench.meeting_clients import Config  # noqa: E402
from bench.sfu import book, cpu_seconds  # noqa: E402
from bench.sfu_clip import LOW_FPS, clip_kbps, encode_clip, encode_low_clip  # noqa: E402
from bench.workers_report import HEADER, ROOMS, Phase, chosen, show, verdict  # noqa: E402

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
        idx = [i for i, r in enumerate(room_of) if r == room]
        run = Run("views", size)
        run.settled = sum(settled[i] for i in idx)
        run.clients = [100 * (c1[i] - c0[i]) / (t1 - t0) for i in idx]
        run.client_drops = sum(d1[1][i] - d0[1][i] for i in idx)
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, help="participants per room (default: calibrate)")
    parser.add_argument("--calibrate", default="30,40,50,60,70,80", help="sizes to try")
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
                    phase.failed = why(e)
                    print(f"{workers:>7} FAILED: {phase.failed}", flush=True)
            finally:
                stop(stack, args, workers)
    verdict(phases[1], phases[2])
    if args.quick:
        print("(smoke run: rooms this small do not load a worker; the ratio means nothing)")
    if any(p.failed for p in phases.values()):
        sys.exit(1)


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
