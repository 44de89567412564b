"""An overloaded media worker, watched over time: does it degrade, or collapse?

One `visio serve` with VISIO_MEDIA_WORKERS=1 and two rooms of P lean receivers
(bench/lean_receive.py, bench/meeting_clients.py, as bench/workers.py's phase
with one worker) that join at once. Every few seconds it prints: how many
client processes are in, the worker's own report (/internal/load: streams it
forwards, its CPU share) and how long that report took to come (the worker's
event loop answers it: a proxy for how late that loop is), the worker's CPU
from /proc, the UDP packets the kernel dropped at its sockets (media it could
not read in time), then per room the video frames/s its receivers got in all,
how many receivers got any, and the client peer connections not connected.

`--relieve-after S`: room B's clients leave S seconds in; room A should come
back to full rate (about 15 frames/s for each of its P receivers' 9
thumbnails, plus 30 for the main window) within seconds.

What "collapse" looked like (issue 15, before visio_rooms/sfu/consent.py):
after ~30 s of overload the worker closed the ICE connections of the watched
publishers (aioice's consent check gave each answer 0.5 s, and the overloaded
loop read them seconds late), 40 of 100 receivers got nothing from then on,
and the worker's CPU fell to ~55 %: nobody was told, nothing came back.

    .venv/bin/python -m bench.overload [--size 50] [--seconds 120] [--relieve-after 90]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.cores import dropped, socket_drops  # noqa: E402
from bench.meeting import Clients, media_workers  # noqa: E402
from bench.meeting_clients import Config  # noqa: E402
from bench.sfu import book, cpu_seconds  # noqa: E402
from bench.sfu_clip import encode_clip, encode_low_clip  # noqa: E402
from bench.workers import start  # noqa: E402

ROOMS = "AB"


def worker_socket(pid: int) -> str:
    """The Unix socket a worker serves on: `python -m visio_rooms SOCKET NAME`."""
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    return argv[-2].decode()


async def report(path: str) -> tuple[dict[str, Any], float]:
    """The worker's /internal/load and how long it took to answer."""
    began = time.monotonic()
    try:
        async with (
            aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=path)) as s,
            s.get("http://worker/internal/load", timeout=aiohttp.ClientTimeout(total=10)) as r,
        ):
            return dict(await r.json()), time.monotonic() - began
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        return {"error": type(e).__name__}, time.monotonic() - began


class Room:
    """One room's client processes (indices into Clients) and their last counters."""

    def __init__(self, name: str, procs: list[int]) -> None:
        self.name = name
        self.procs = procs
        self.ready: set[int] = set()
        self.gone = False
        self.last: list[int] | None = None

    def line(self, answers: dict[int, dict[str, Any]], dt: float) -> str:
        if self.gone:
            return f"{self.name}: left"
        if not all(i in answers for i in self.procs):
            return f"{self.name}: {len(self.ready)}/{len(self.procs)} processes in"
        members = [c for i in self.procs for c in answers[i]["clients"]]
        counts = [sum(c["frames"].values()) for c in members]
        down = sum(not s.startswith("connected") for c in members for s in c["pcs"])
        out = f"{self.name}: {down:3} down"
        if self.last is not None and len(self.last) == len(counts):
            fps = sum(b - a for a, b in zip(self.last, counts, strict=True)) / dt
            moving = sum(b > a for a, b in zip(self.last, counts, strict=True))
            out += f" {fps:6.0f} fps {moving:3}/{len(members)} receiving"
        self.last = counts
        return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=50, help="participants per room")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long to watch")
    parser.add_argument("--every", type=float, default=3.0, help="s between two lines")
    parser.add_argument("--relieve-after", type=float, help="room B leaves after S s")
    parser.add_argument("--per-process", type=int, default=8, help="clients per process")
    parser.add_argument("--log", type=Path, help="keep the serve log in this file")
    args = parser.parse_args()
    clips = (encode_clip(), encode_low_clip())
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        stack = start(1, args.size, Path(tmp), argparse.Namespace(log=None), pin=False)
        try:
            watch(stack, args, clips)
        finally:
            log = stack.data_dir / "serve.log"
            stack.stop()
            if args.log:
                args.log.parent.mkdir(parents=True, exist_ok=True)
                args.log.write_bytes(log.read_bytes())
    print(f"load average {os.getloadavg()[0]:.1f} at the end", flush=True)


def watch(stack: Any, args: argparse.Namespace, clips: tuple[list[bytes], list[bytes]]) -> None:
    size = args.size
    per_room = min(size, max(1, math.ceil(size / args.per_process)))
    counts = [size // per_room + (i < size % per_room) for i in range(per_room)]
    cfgs, rooms = [], []
    for name in ROOMS:
        token = book(stack)
        rooms.append(Room(name, list(range(len(cfgs), len(cfgs) + per_room))))
        cfgs += [
            Config(stack.web_url, token, n, sum(counts[:i]), True, 9, *clips, lean=True)
            for i, n in enumerate(counts)
        ]
    (worker,) = media_workers(stack.proc.pid)
    path = worker_socket(worker)
    clients = Clients(cfgs)
    began = at = time.monotonic()
    cpu, drops = sum(cpu_seconds(worker)), socket_drops(worker)
    print("   t  worker: streams cpu(own) cpu(/proc) answered-in dropped | per room", flush=True)
    try:
        while time.monotonic() - began < args.seconds:
            time.sleep(args.every)
            if args.relieve_after and time.monotonic() - began > args.relieve_after:
                leave(clients, rooms[1])
            for room in rooms:
                for i in set(room.procs) - room.ready:
                    if clients.conns[i].poll(0):
                        answer = clients.conns[i].recv()
                        room.ready.add(i)
                        if "error" in answer:
                            print(f"  a process of room {room.name} failed:", flush=True)
                            print("  " + answer["error"].splitlines()[-1], flush=True)
            load, took = asyncio.run(report(path))
            now = time.monotonic()
            cpu1, drops1 = sum(cpu_seconds(worker)), socket_drops(worker)
            dt = now - at
            line = (
                f"{now - began:4.0f}  {load.get('streams', load.get('error', '?')):>13}"
                f" {100 * float(load.get('cpu', 0)):6.0f}% {100 * (cpu1 - cpu) / dt:7.0f}%"
                f" {took:9.2f}s {dropped(drops, drops1):7}"
            )
            cpu, drops, at = cpu1, drops1, now
            answers = sample(clients, rooms)
            line += " | " + " | ".join(room.line(answers, dt) for room in rooms)
            print(line, flush=True)
    finally:
        clients.close()


def sample(clients: Clients, rooms: list[Room]) -> dict[int, dict[str, Any]]:
    """Counters of every process that is in and still there."""
    asked = [i for room in rooms if not room.gone for i in room.ready]
    for i in asked:
        clients.conns[i].send(("sample",))
    answers = {}
    for i in asked:
        if clients.conns[i].poll(60):
            answer = clients.conns[i].recv()
            if "error" not in answer:
                answers[i] = answer
    return answers


def leave(clients: Clients, room: Room) -> None:
    if room.gone:
        return
    room.gone = True
    for i in room.procs:
        if i not in room.ready:  # still joining: it would not read "quit"
            clients.procs[i].kill()
            continue
        clients.conns[i].send(("quit",))
    print(f"  room {room.name}'s clients leave", flush=True)


if __name__ == "__main__":
    main()
