"""Recorder cost for a room of six, against one participant's forwarding, same run.

(a) One participant's forwarding: the real backend (`visio serve`), one synthetic
participant (the project's signalling client, aiortc) publishing a 640x480 VP8
camera at 30 fps (~1 Mbit/s, pre-encoded and looped, bench/sfu_clip.py) and an
Opus microphone, forwarded to the five others of a room of six (subscriber
processes from bench/sfu.py). Backend CPU is user+sys of the whole web process
(all its threads) and of its recorder processes, from /proc. The same room is
then measured recorded: the difference is the recorder's cost for that room.

(b) The recorder for a room of six: the Recorder fed in this process by six
synthetic publishers (the same VP8 clip and an Opus voice each, at real time):
the speaker's camera decoded and composed, six voices decoded and mixed,
1280x720 H.264 at 30 fps + AAC encoded and written as MP4. CPU of this process
and of the recorder's process (x264's threads included) minus the same feeding
loop without a recorder; output frame rate read back from the file.

Printed: both figures, the ratio of (b) to the target (under one core) and to (a).
A full room of six synthetic aiortc participants all subscribing to each other
needs more CPU on the client side than this 2-core machine has, which is why (a)
uses one publisher and (b) feeds the recorder directly.

    .venv/bin/python bench/recorder.py [--seconds 10] [--participants 6]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc import AudioStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.sfu import Workers, cpu_seconds  # noqa: E402
from bench.sfu_clip import EncodedClip, encode_clip  # noqa: E402
from visio_rooms.client import RoomClient  # noqa: E402
from visio_rooms.sfu import passthrough  # noqa: E402


def with_recorders(pid: int) -> float:
    """CPU seconds (user+sys) of `pid` and of its recorder processes (multiprocessing
    children; Radicale, the other child of `visio serve`, is left out)."""
    total = sum(cpu_seconds(pid))
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) != pid or b"multiprocessing" not in (proc / "cmdline").read_bytes():
                continue
            total += sum(cpu_seconds(int(proc.name)))
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
    return total


def book(stack: Any, record: bool) -> str:
    from tests.e2e.conftest import new_user
    from tests.support import ics

    user = new_user(stack)
    now = dt.datetime.now(dt.UTC)
    f = "%Y%m%dT%H%M%S"
    body = ics.event(
        start=(now - dt.timedelta(minutes=5)).strftime(f),
        end=(now + dt.timedelta(hours=2)).strftime(f),
        tz="UTC",
        extra="X-VISIO-LOBBY:FALSE" + ("\nX-VISIO-RECORD:TRUE" if record else ""),
    )
    user.put("bench.ics", body)
    link: str = ics.join_link(user.get("bench.ics").text)
    return link.rsplit("/", 1)[1]


async def participant(url: str, token: str, i: int, clip: list[bytes]) -> RoomClient:
    client = RoomClient(url, token)
    await client.connect()
    await client.join(name=f"Participant {i + 1}")
    camera = EncodedClip(clip)
    await client.publish({"camera": camera, "microphone": AudioStreamTrack()})
    assert client.pub_pc is not None
    for t in client.pub_pc.getTransceivers():
        if t.sender.track is camera:
            passthrough.on_keyframe_request(t.sender, camera.keyframe_wanted)
    return client


async def run_room(
    url: str, token: str, pid: int, subscribers: int, seconds: float, processes: int
) -> dict[str, float]:
    """One participant publishing camera + microphone, forwarded to `subscribers` others."""
    clip = encode_clip()
    publisher = await participant(url, token, 0, clip)
    try:
        async with Workers(url, token, subscribers, "video", processes) as workers:
            await workers.ask()  # everyone in and receiving
            await asyncio.sleep(2.0)  # past the joins' keyframe bursts and renegotiations
            before = await workers.ask("count")
            c0, t0 = with_recorders(pid), time.monotonic()
            await asyncio.sleep(seconds)
            c1, t1 = with_recorders(pid), time.monotonic()
            after = await workers.ask("count")
    finally:
        await publisher.close()
    frames = sum(x["frames"] for x in after) - sum(x["frames"] for x in before)
    return {"cpu": 100 * (c1 - c0) / (t1 - t0), "delivered_fps": frames / (t1 - t0)}


class _Pub:
    """A stand-in Publication: the recorder only adds sinks and asks for keyframes."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sinks: set[Any] = set()
        self.active = True

    def request_keyframe(self) -> None:
        pass


def opus_loop() -> list[bytes]:
    """One second of a voice-like tone, Opus-encoded once (20 ms packets)."""
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "s16"  # type: ignore[attr-defined]
    enc.time_base = Fraction(1, 48000)
    out: list[bytes] = []
    t = np.arange(48000) / 48000
    tone = (np.sin(2 * np.pi * 220 * t) * np.sin(2 * np.pi * 3 * t) * 12000).astype(np.int16)
    for i in range(50):
        pcm = np.repeat(tone[i * 960 : (i + 1) * 960], 2).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="stereo")
        frame.sample_rate = 48000
        out += [bytes(p) for p in enc.encode(frame)]  # type: ignore[attr-defined]
    return out


async def recorder_alone(n: int, seconds: float, preset: str) -> dict[str, float]:
    """The Recorder fed by n synthetic publishers in this process; CPU of the whole process
    (every thread: the feeding loop, the worker, x264's) minus the feeding loop alone."""
    from visio_rooms.recorder.session import Recorder
    from visio_rooms.sfu.passthrough import EncodedFrame

    clip, voice = encode_clip(), opus_loop()

    async def feed(recorder: Recorder | None) -> tuple[float, float]:
        cams = [_Pub("camera") for _ in range(n)]
        mics = [_Pub("microphone") for _ in range(n)]
        if recorder is not None:
            await recorder.start()
        c0, t0 = with_recorders(os.getpid()), time.monotonic()
        tick = 0
        while time.monotonic() - t0 < seconds:
            if recorder is not None and tick % 15 == 0:  # as the service does, twice a second
                names = [f"Participant {i + 1}" for i in range(n)]
                recorder.follow(mics, cams[(tick // 90) % n], names[(tick // 90) % n], names)
            for cam in cams:
                data = clip[tick % len(clip) or (1 if tick else 0)]
                for sink in list(cam.sinks):
                    sink.push(cam, EncodedFrame(data, tick * 3000, Fraction(1, 90000)), False)
            for k in range(2 if tick % 3 else 1):  # 50 audio packets a second
                for mic in mics:
                    data = voice[(tick + k) % len(voice)]
                    for sink in list(mic.sinks):
                        sink.push(mic, EncodedFrame(data, 0, Fraction(1, 48000)), False)
            tick += 1
            await asyncio.sleep(max(0.0, t0 + tick / 30 - time.monotonic()))
        cpu, wall = with_recorders(os.getpid()) - c0, time.monotonic() - t0
        if recorder is not None:
            await recorder.stop()
        return cpu, wall

    base_cpu, base_wall = await feed(None)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.mp4"
        recorder = Recorder("bench", "Bench", path, None, lambda w, m: None, preset)
        cpu, wall = await feed(recorder)
        fps, duration, _w, _h = output_fps_of(path)
    return {
        "cpu": 100 * (cpu / wall - base_cpu / base_wall),
        "fps": fps,
        "late": recorder.stats.late_frames,
        "frames": recorder.stats.frames,
        "duration": duration,
    }


def output_fps_of(path: Path) -> tuple[float, float, int, int]:
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        pts = [float(p.pts * p.time_base) for p in c.demux(stream) if p.pts is not None]
        w, h = stream.codec_context.width, stream.codec_context.height
    duration = max(pts) - min(pts) if pts else 0.0
    return (len(pts) / duration if duration else 0.0), duration, w, h


def output_fps(folder: Path) -> tuple[float, float, int, int]:
    """(frames/s, duration, width, height) of the longest MP4 the recorder wrote."""
    files = sorted(folder.glob("recordings/*/*.mp4"), key=lambda p: p.stat().st_size)
    return output_fps_of(files[-1]) if files else (0.0, 0.0, 0, 0)


async def bench(args: argparse.Namespace) -> None:
    from tests.support.stack import Stack, wait_for

    subs = args.participants - 1
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "stack").start()
        try:
            assert stack.proc is not None
            pid = stack.proc.pid  # the web backend itself (Radicale is its child process)
            plain_token, recorded_token = book(stack, False), book(stack, True)
            results = {}
            for label, token in (("forwarding", plain_token), ("recorded", recorded_token)):
                results[label] = await run_room(
                    stack.web_url, token, pid, subs, args.seconds, args.workers
                )
                r = results[label]
                print(
                    f"{label:10} 1 publisher -> {subs} subscribers: backend CPU={r['cpu']:6.1f}%"
                    f"  delivered {r['delivered_fps']:6.1f} video frames/s (of {subs * 30})",
                    flush=True,
                )
            wait_for(
                lambda: "recording stopped" in stack.log_text(), timeout=30, what="recorder stop"
            )
            fps, duration, w, h = output_fps(Path(tmp) / "stack")
            stopped = [x for x in stack.log_text().splitlines() if "recording stopped" in x]
        finally:
            stack.stop()
    alone = await recorder_alone(args.participants, args.seconds, args.preset)
    forwarding = results["forwarding"]["cpu"]
    in_stack = results["recorded"]["cpu"] - forwarding
    print()
    print(
        f"one participant's forwarding (its media to {subs} others): {forwarding:.1f}% of one core"
    )
    print(
        f"recorder in the backend, that room recorded (recorded - forwarding): {in_stack:.1f}%;"
        f" output {w}x{h} at {fps:.1f} frames/s over {duration:.1f} s"
    )
    print(f"  {stopped[-1].split(': ', 1)[-1] if stopped else '-'}")
    print(
        f"recorder for a room of {args.participants} (in-process, synthetic 640x480 VP8 + Opus"
        f" publishers, preset {args.preset}, 1280x720 at 30 fps): {alone['cpu']:.1f}% of one"
        f" core, {alone['fps']:.1f} frames/s output"
        f" ({alone['late']} of {alone['frames'] + alone['late']} ticks late)"
    )
    print(f"ratio to the target (< 100% of one core): {alone['cpu'] / 100:.2f}")
    if forwarding > 0:
        print(f"ratio to one participant's forwarding: {alone['cpu'] / forwarding:.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--participants", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="subscriber processes")
    parser.add_argument("--preset", default="veryfast", help="x264 preset (VISIO_RECORDING_PRESET)")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
