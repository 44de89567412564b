"""What relaying signalling through the front costs (issue 15).

The page's WebSocket reaches the front, which relays every message to the room's
media worker (conference_backend/proxy.py). This bench joins C clients to rooms
and has each send `ping` R times a second for S seconds, first through the
front (the public URL), then straight at the worker's Unix socket (what the
front itself connects to), in one run on one stack. It prints the round-trip
times (median, 95th and 99th percentile) both ways, the extra the relay adds,
and the front's CPU per thousand relayed messages (from /proc, user+sys).

    .venv/bin/python -m bench.relay [--clients 50] [--rate 4] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import new_user  # noqa: E402
from tests.room.signal import NO_LOBBY, book  # noqa: E402
from tests.support.stack import Stack, wait_for  # noqa: E402
from visio_core.placement import CLIENT_HEADER  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def worker_sockets(front: int) -> list[str]:
    """The Unix sockets of the front's media workers, from their command lines."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent == front and b"visio_rooms" in args:
            found.append(args[args.index(b"visio_rooms") + 1].decode())
    return found


async def client(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], rate: float, seconds: float
) -> list[float]:
    async with session.ws_connect(url, headers=headers) as ws:
        await ws.send_str(json.dumps({"type": "join", "name": "Bench"}))
        async for msg in ws:
            if json.loads(msg.data).get("type") == "joined":
                break
        rtts: list[float] = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            sent = time.monotonic()
            await ws.send_str('{"type":"ping"}')
            async for msg in ws:
                if json.loads(msg.data).get("type") == "pong":
                    break
            rtts.append((time.monotonic() - sent) * 1000)
            await asyncio.sleep(max(0.0, 1 / rate - (time.monotonic() - sent)))
        return rtts


async def round_of(
    tokens: list[str],
    connect: Callable[[], aiohttp.BaseConnector],
    base: str,
    headers: dict[str, str],
    rate: float,
    seconds: float,
) -> list[float]:
    async with aiohttp.ClientSession(connector=connect()) as session:
        runs = [client(session, f"{base}/ws/{t}", headers, rate, seconds) for t in tokens]
        return [rtt for rtts in await asyncio.gather(*runs) for rtt in rtts]


def summary(rtts: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(rtts, n=100)
    return statistics.median(rtts), q[94], q[98]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--rate", type=float, default=4.0, help="pings per second per client")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        stack = Stack(
            Path(tmp) / "stack",
            extra_env={"VISIO_MEDIA_WORKERS": "1", "VISIO_SOCKETS_PER_ADDRESS": "1000"},
        ).start()
        try:
            user = new_user(stack)
            links = [book(user, f"r{i}.ics", extra=NO_LOBBY)[0] for i in range(args.rooms)]
            tokens = [links[i % len(links)].rsplit("/", 1)[1] for i in range(args.clients)]
            assert stack.proc is not None
            front = stack.proc.pid
            (sock,) = wait_for(lambda: worker_sockets(front), 30, what="the worker")
            base = stack.web_url.rstrip("/").replace("http", "ws", 1)
            headers = {CLIENT_HEADER: "127.0.0.1"}

            def go(
                connector: Callable[[], aiohttp.BaseConnector], url: str
            ) -> tuple[list[float], float]:
                before = cpu_seconds(front)
                rtts = asyncio.run(
                    round_of(tokens, connector, url, headers, args.rate, args.seconds)
                )
                return rtts, cpu_seconds(front) - before

            # The front relays; then the same clients straight at the worker.
            relayed, front_cpu = go(aiohttp.TCPConnector, base)
            direct, _ = go(lambda: aiohttp.UnixConnector(path=sock), "ws://worker")
        finally:
            stack.stop()
    messages = 2 * len(relayed)  # each ping and its pong crossed the front
    r, d = summary(relayed), summary(direct)
    print(
        f"{args.clients} clients in {args.rooms} rooms, {args.rate:g} pings/s each, "
        f"{args.seconds:g} s per round"
    )
    print(f"{'':22}{'median':>10}{'p95':>10}{'p99':>10}   (round trip, ms)")
    print(f"{'through the front':22}{r[0]:10.2f}{r[1]:10.2f}{r[2]:10.2f}")
    print(f"{'straight at the worker':22}{d[0]:10.2f}{d[1]:10.2f}{d[2]:10.2f}")
    print(f"{'added by the relay':22}{r[0] - d[0]:10.2f}{r[1] - d[1]:10.2f}{r[2] - d[2]:10.2f}")
    print(f"ratio relayed/direct (median): {r[0] / d[0]:.2f}x")
    print(
        f"front CPU while relaying: {front_cpu:.2f} s for {messages} messages = "
        f"{1e6 * front_cpu / messages:.0f} µs per message "
        f"({100 * front_cpu / args.seconds:.1f} % of a core at "
        f"{messages / args.seconds:.0f} messages/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
