"""SFU cost: encoded forwarding (ours) against stock aiortc MediaRelay, same run.

One room, one publisher sending 640x480 VP8 at 30 fps (~1 Mbit/s) or Opus, N
subscribers, all synthetic aiortc participants driven through the project's
signalling client (visio_rooms.client). The baseline server
(bench/relay_baseline.py) decodes and re-encodes per subscriber, as stock aiortc
does, and is measured in the same invocation.

What keeps the figures honest on a 2-core machine:
- the publisher does not encode live: a clip is VP8-encoded once at start and
  looped as encoded packets (a keyframe on every keyframe request), so the
  publisher costs almost nothing and the servers still receive a real stream;
- subscribers do not decode (they count encoded frames) and run in several
  worker processes (`--workers`), so one client process never becomes the
  bottleneck;
- server CPU is user+sys of the backend process alone, from /proc.

For each N it prints CPU per video and per audio consumer and frames/s
delivered per consumer; then the ratios against the targets: per consumer, per
delivered frame (a saturated baseline delivers fewer frames, which flatters its
CPU per consumer) and per *added* consumer (the difference between two room
sizes, which sets apart the fixed cost of receiving the publisher); and the
median time from `join` to the first remote video frame, subscribers joining
one at a time.

    .venv/bin/python bench/sfu.py [--sizes 1,8,32] [--baseline-sizes 1,8] [--seconds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import AudioStreamTrack
from aiortc.mediastreams import MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sfu_clip import FPS, EncodedClip, encode_clip  # noqa: E402
from visio_rooms.client import RoomClient  # noqa: E402
from visio_rooms.sfu import passthrough  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of this process alone (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / TICKS, int(fields[12]) / TICKS


# worker processes: subscribers ----------------------------------------------
async def worker(url: str, token: str, count: int, kind: str) -> None:
    """Joins `count` subscribers, reports when all receive, then answers counts on stdin."""
    clients = [RoomClient(url, token) for _ in range(count)]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def received(c: RoomClient) -> int:
        return sum(c.frames[s["mid"]] for s in c.slots if s["kind"] == kind)

    try:
        for c in clients:
            await c.connect()
        await asyncio.gather(
            *(c.join(name=f"Sub {os.getpid()}-{i}") for i, c in enumerate(clients))
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(received(c) for c in clients):
            await asyncio.sleep(0.05)
        firsts = [
            c.first_frame_at - c.join_sent_at
            for c in clients
            if c.first_frame_at is not None and c.join_sent_at is not None
        ]
        print(json.dumps({"ready": True, "first": firsts}), flush=True)
        while (await reader.readline()).decode().strip() not in ("", "quit"):
            consumers = sum(
                1 for c in clients for s in c.slots if s["kind"] == kind and c.frames[s["mid"]]
            )
            total = sum(received(c) for c in clients)
            print(json.dumps({"frames": total, "consumers": consumers}), flush=True)
    finally:
        for c in clients:
            await c.close()


class Workers:
    def __init__(self, url: str, token: str, n: int, kind: str, processes: int) -> None:
        self.args = (url, token, n, kind, processes)
        self.procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Workers:
        url, token, n, kind, processes = self.args
        per = math.ceil(n / processes)
        counts = [min(per, n - i) for i in range(0, n, per)]
        for count in counts:
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--worker",
                    url,
                    token,
                    str(count),
                    kind,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            )
        return self

    async def ask(self, line: str | None = None) -> list[dict[str, Any]]:
        answers = []
        for p in self.procs:
            assert p.stdin is not None and p.stdout is not None
            if line is not None:
                p.stdin.write(line.encode() + b"\n")
                await p.stdin.drain()
        for p in self.procs:
            assert p.stdout is not None
            raw = await asyncio.wait_for(p.stdout.readline(), 60)
            answers.append(json.loads(raw))
        return answers

    async def __aexit__(self, *exc: object) -> None:
        for p in self.procs:
            if p.stdin is not None and not p.stdin.is_closing():
                p.stdin.write(b"quit\n")
                p.stdin.close()
        for p in self.procs:
            try:
                await asyncio.wait_for(p.wait(), 20)
            except TimeoutError:
                p.kill()
                await p.wait()


# the measurement ----------------------------------------------------------------
async def publish(url: str, token: str, kind: str, clip: list[bytes]) -> RoomClient:
    publisher = RoomClient(url, token)
    await publisher.connect()
    await publisher.join(name="Publisher")
    if kind == "video":
        track: MediaStreamTrack = EncodedClip(clip)
        await publisher.publish({"camera": track})
        assert publisher.pub_pc is not None
        for t in publisher.pub_pc.getTransceivers():
            if t.sender.track is track:
                # The packets are pre-encoded: a PLI restarts the clip at its keyframe.
                passthrough.on_keyframe_request(t.sender, track.keyframe_wanted)  # type: ignore[attr-defined]
    else:
        await publisher.publish({"microphone": AudioStreamTrack()})
    return publisher


async def run_room(
    url: str, token: str, pid: int, n: int, kind: str, args: argparse.Namespace, clip: list[bytes]
) -> dict[str, Any]:
    publisher = await publish(url, token, kind, clip)
    try:
        async with Workers(url, token, n, kind, min(n, args.workers)) as workers:
            ready = await workers.ask()
            firsts = [f for r in ready for f in r["first"]]
            await asyncio.sleep(1.0)  # past the keyframe bursts of the joins
            before = await workers.ask("count")
            c0, t0 = cpu_seconds(pid), time.monotonic()
            await asyncio.sleep(args.seconds)
            after = await workers.ask("count")
            c1, t1 = cpu_seconds(pid), time.monotonic()
        frames = sum(a["frames"] for a in after) - sum(b["frames"] for b in before)
        consumers = sum(a["consumers"] for a in after)
        return {
            "cpu": 100 * (sum(c1) - sum(c0)) / (t1 - t0),
            "sys": 100 * (c1[1] - c0[1]) / (t1 - t0),
            "consumers": consumers,
            "fps": frames / (t1 - t0),
            "first_loaded": statistics.median(firsts) if firsts else None,
        }
    finally:
        await publisher.close()


async def first_frames(url: str, token: str, trials: int, clip: list[bytes]) -> list[float]:
    """Join-to-first-frame with one publisher in the room, subscribers joining one at a time."""
    publisher = await publish(url, token, "video", clip)
    times = []
    try:
        await asyncio.sleep(0.5)
        for i in range(trials):
            async with RoomClient(url, token) as c:
                await c.join(name=f"First {i}")
                deadline = time.monotonic() + 20
                while c.first_frame_at is None and time.monotonic() < deadline:
                    await asyncio.sleep(0.01)
                if c.first_frame_at is not None and c.join_sent_at is not None:
                    times.append(c.first_frame_at - c.join_sent_at)
    finally:
        await publisher.close()
    return times


def report(label: str, n: int, kind: str, r: dict[str, Any]) -> str:
    per = r["cpu"] / r["consumers"] if r["consumers"] else float("nan")
    fps = r["fps"] / r["consumers"] if r["consumers"] else 0.0
    line = (
        f"{label:10} {kind:5} N={n:<3} consumers={r['consumers']:<3} CPU={r['cpu']:6.1f}%"
        f" (sys {r['sys']:4.1f})"
        f"  per consumer={per:5.2f}%  delivered {fps:4.1f} frames/s per consumer"
    )
    if kind == "video" and r["first_loaded"] is not None:
        line += f"  (join->first frame under load {r['first_loaded'] * 1000:.0f} ms)"
    return line


def book(stack: Any) -> str:
    from tests.e2e.conftest import new_user
    from tests.support import ics

    user = new_user(stack)
    now = dt.datetime.now(dt.UTC)
    f = "%Y%m%dT%H%M%S"
    body = ics.event(
        start=(now - dt.timedelta(minutes=5)).strftime(f),
        end=(now + dt.timedelta(hours=2)).strftime(f),
        tz="UTC",
        extra="X-VISIO-LOBBY:FALSE",
    )
    user.put("bench.ics", body)
    link: str = ics.join_link(user.get("bench.ics").text)
    return link.rsplit("/", 1)[1]


async def measure(
    label: str, url: str, token: str, pid: int, sizes: list[int], args: argparse.Namespace,
    clip: list[bytes], results: dict[tuple[str, str, int], dict[str, Any]],
) -> None:  # fmt: skip
    for kind in ("video", "audio"):
        for n in sizes:
            r = await run_room(url, token, pid, n, kind, args, clip)
            results[(label, kind, n)] = r
            print(report(label, n, kind, r), flush=True)


async def bench(args: argparse.Namespace) -> None:
    import requests

    from tests.support.stack import Stack, free_port, wait_for

    sizes = [int(x) for x in args.sizes.split(",")]
    base_sizes = [int(x) for x in args.baseline_sizes.split(",") if x]
    clip = encode_clip()
    kbps = sum(map(len, clip)) * 8 * FPS / len(clip) / 1000
    print(f"clip: {len(clip)} frames, {kbps:.0f} kbit/s, keyframe {len(clip[0])} bytes", flush=True)
    results: dict[tuple[str, str, int], dict[str, Any]] = {}
    firsts: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        # Every client comes from 127.0.0.1: lift the per-address socket cap (README, Limits).
        env = {"VISIO_ROOM_CAPACITY": "200", "VISIO_SOCKETS_PER_ADDRESS": "1000"}
        stack = Stack(Path(tmp) / "stack", extra_env=env).start()
        try:
            token = book(stack)
            assert stack.proc is not None
            await measure(
                "forward", stack.web_url, token, stack.proc.pid, sizes, args, clip, results
            )
            firsts = await first_frames(stack.web_url, token, args.first_trials, clip)
        finally:
            stack.stop()
        port = free_port()
        base = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / "relay_baseline.py"), str(port)]
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_for(lambda: requests.get(url + "/healthz", timeout=1).ok, what="baseline")
            await measure(
                "MediaRelay", url, "baseline-room-token", base.pid, base_sizes, args, clip, results
            )
        finally:
            base.terminate()
            base.wait(timeout=15)
    print()
    summary(results, sizes, base_sizes, firsts)


def per_consumer(r: dict[str, Any] | None) -> float | None:
    return r["cpu"] / r["consumers"] if r and r["consumers"] else None


def marginal(lo: dict[str, Any] | None, hi: dict[str, Any] | None) -> float | None:
    """CPU (% of a core) that one more consumer adds, from two room sizes."""
    if not lo or not hi or hi["consumers"] <= lo["consumers"]:
        return None
    return float(hi["cpu"] - lo["cpu"]) / (hi["consumers"] - lo["consumers"])


def summary(
    results: dict[tuple[str, str, int], dict[str, Any]],
    sizes: list[int],
    base_sizes: list[int],
    firsts: list[float],
) -> None:
    for kind in ("video", "audio"):
        target = "  (target >= 15x)" if kind == "video" else ""
        for n in base_sizes:
            fr, br = results.get(("forward", kind, n)), results.get(("MediaRelay", kind, n))
            f, b = per_consumer(fr), per_consumer(br)
            if fr and br and f and b and fr["fps"] and br["fps"]:
                # Per delivered frame too: a saturated MediaRelay delivers fewer frames,
                # which makes its CPU per consumer look lower than it is.
                per_frame = (br["cpu"] / br["fps"]) / (fr["cpu"] / fr["fps"])
                print(
                    f"{kind} N={n}: MediaRelay costs {b / f:.1f}x more CPU per consumer,"
                    f" {per_frame:.1f}x per delivered frame{target}"
                )
        lo, hi = (min(base_sizes), max(base_sizes)) if base_sizes else (0, 0)
        if hi > lo:
            f_m, b_m = (
                marginal(results.get((label, kind, lo)), results.get((label, kind, hi)))
                for label in ("forward", "MediaRelay")
            )
            if f_m and b_m:
                print(
                    f"{kind} N={lo}->{hi}: each added consumer costs {b_m:.2f}% of a core"
                    f" with MediaRelay, {f_m:.2f}% forwarded: {b_m / f_m:.1f}x{target}"
                )
    for n in sizes:
        big = results.get(("forward", "video", n))
        per = per_consumer(big)
        if big and per:
            # The fixed cost of the room (receiving the publisher, timers) is spread
            # over the consumers; the marginal cost is what one more consumer adds.
            print(
                f"video N={n}: {100 / per:.0f} forwarded consumers per core at this load"
                f" (target >= 150), {big['fps'] / big['consumers']:.1f} frames/s each"
            )
    if len(sizes) >= 2:
        hi = results.get(("forward", "video", sizes[-1]))
        m = marginal(results.get(("forward", "video", sizes[0])), hi)
        if m and hi:
            print(
                f"video N={sizes[0]}->{sizes[-1]}: each added consumer costs {m:.2f}% of a core:"
                f" {100 / m:.0f} consumers per core (target >= 150), at"
                f" {hi['fps'] / hi['consumers']:.1f} frames/s each"
            )
    if firsts:
        print(
            f"join -> first remote video frame, median of {len(firsts)} joins one at a time:"
            f" {statistics.median(firsts) * 1000:.0f} ms (target <= 1000 ms;"
            f" min {min(firsts) * 1000:.0f}, max {max(firsts) * 1000:.0f})"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, token, count, kind = sys.argv[2:6]
        asyncio.run(worker(url, token, int(count), kind))
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--baseline-sizes", default="1,8")
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=4, help="subscriber processes")
    parser.add_argument("--first-trials", type=int, default=7)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
