"""Phone gateway cost: CPU per phone leg in a room with 4 web participants, same run.

One Audio room; 4 synthetic web participants (visio_rooms.client) publish
Opus speech-like audio; then N = 1, 8, 16 phone legs call the real gateway
(VISIO_SIP_LISTEN) from an in-process SIP/RTP peer: INVITE, the room number by
SIP INFO, then 20 ms A-law packets, while counting what comes back. Two
scenarios: one caller speaks and the others listen (their line's hiss), as in
a meeting; and every caller speaks at once, the worst case. Each leg costs the
server: G.711 decode, level, its share of the mix (the 4 web voices are decoded
once per room) and a G.711 encode; a caller who speaks also costs the Opus
encoding of their voice and its forwarding to the 4 browsers (silence is not
sent: conference_backend/phone/bridge.SilenceGate). Server CPU is user+sys of the
`visio serve` process alone, from /proc; the baseline is the same room with 0
legs, measured in the same invocation.

    .venv/bin/python bench/phone.py [--sizes 1,8,16] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import fractions
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamTrack

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conference_backend.phone import g711, rtp, sdp, sip  # noqa: E402
from visio_rooms.client import RoomClient  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
TARGET = 30  # legs per core
SCENARIOS = {
    "one talks": "one caller speaks, the others listen (line noise): a meeting as it is",
    "all talk": "every caller speaks at once, all the time: the worst case",
}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def speech_like(seconds: float, rate: int, seed: int) -> np.ndarray:
    """Voiced bursts: a few harmonics under a syllable-rate envelope, with pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    f0 = 110 + 40 * seed
    voice = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    envelope = np.clip(np.sin(2 * np.pi * 3.0 * t + seed), 0, None) * (
        np.sin(2 * np.pi * 0.25 * t + seed) > -0.3
    )
    noise = rng.normal(0, 0.02, len(t))
    return ((voice * envelope * 0.25 + noise) * 12000).clip(-32768, 32767).astype(np.int16)


class SpeechTrack(MediaStreamTrack):
    """A web participant's microphone: speech-like audio, 20 ms frames at 48 kHz."""

    kind = "audio"

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.pcm = speech_like(4.0, 48000, seed)
        self.pts = 0
        self.start: float | None = None

    async def recv(self) -> Any:
        if self.start is None:
            self.start = time.monotonic()
        wait = self.start + self.pts / 48000 - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        i = self.pts % len(self.pcm)
        chunk = self.pcm[i : i + 960]
        if len(chunk) < 960:
            chunk = np.concatenate([chunk, self.pcm[: 960 - len(chunk)]])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 48000
        frame.pts = self.pts
        frame.time_base = fractions.Fraction(1, 48000)
        self.pts += 960
        return frame


def line_noise(seconds: float, rate: int, seed: int) -> np.ndarray:
    """A caller who listens: the line's hiss, about -65 dBov."""
    rng = np.random.default_rng(seed)
    return rng.normal(0, 18, int(seconds * rate)).clip(-32768, 32767).astype(np.int16)


class Leg(asyncio.DatagramProtocol):
    """One caller: a SIP dialog over UDP and its RTP, sending speech and counting returns."""

    def __init__(self, gateway: tuple[str, int], number: str, seed: int, talking: bool) -> None:
        self.gateway = gateway
        self.number = number
        audio = speech_like(4.0, 8000, seed + 10) if talking else line_noise(4.0, 8000, seed)
        self.payload = g711.encode(audio, "PCMA")
        self.received = 0
        self.answer: asyncio.Future[sip.Message] | None = None
        self.call_id = secrets.token_hex(8)
        self.tag = sip.new_tag()
        self.cseq = 1
        self.to = ""

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if data[:1] == b"\x80":
            self.received += 1
            return
        try:
            msg = sip.parse(data)
        except sip.SipError:
            return
        if msg.is_request and msg.method == "BYE":
            self.sip.sendto(sip.response(msg, 200).to_bytes(), addr)
        elif not msg.is_request and msg.status >= 200 and self.answer and not self.answer.done():
            self.answer.set_result(msg)

    async def request(self, method: str, body: bytes = b"", kind: str = "") -> sip.Message:
        host, port = self.sip.get_extra_info("sockname")
        headers = [
            ("via", f"SIP/2.0/UDP {host}:{port};branch={sip.new_branch()};rport"),
            ("max-forwards", "70"),
            ("from", f"<sip:0611{self.call_id[:6]}@{host}>;tag={self.tag}"),
            ("to", self.to or f"<sip:visio@{self.gateway[0]}>"),
            ("call-id", self.call_id),
            ("cseq", f"{self.cseq} {method}"),
            ("contact", f"<sip:bench@{host}:{port}>"),
        ]
        if kind:
            headers.append(("content-type", kind))
        self.cseq += 1
        message = sip.Message(method=method, uri=f"sip:visio@{self.gateway[0]}", headers=headers)
        message.body = body
        self.answer = asyncio.get_running_loop().create_future()
        self.sip.sendto(message.to_bytes(), self.gateway)
        if method == "ACK":
            return message
        return await asyncio.wait_for(self.answer, 10)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.sip, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        self.rtp, _ = await loop.create_datagram_endpoint(lambda: self, local_addr=("127.0.0.1", 0))
        media = self.rtp.get_extra_info("sockname")[1]
        offer = (
            "v=0\r\no=bench 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
            f"m=audio {media} RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
        )
        ok = await self.request("INVITE", offer.encode(), "application/sdp")
        assert ok.status == 200, ok.status
        self.to = ok.get("to") or ""
        neg = sdp.negotiate(ok.body.decode())
        self.remote = (neg.address, neg.port)
        await self.request("ACK")
        for key in self.number + "#":
            reply = await self.request(
                "INFO", f"Signal={key}\r\n".encode(), "application/dtmf-relay"
            )
            assert reply.status == 200
        self.sender = rtp.RtpSender(8, secrets.randbits(32), 1, 0)
        self.task = asyncio.create_task(self.talk())

    async def talk(self) -> None:
        start, i = time.monotonic(), 0
        while True:
            offset = (i * 160) % len(self.payload)
            chunk = self.payload[offset : offset + 160]
            self.rtp.sendto(self.sender.next(chunk.ljust(160, b"\xd5")), self.remote)
            i += 1
            await asyncio.sleep(max(0.0, start + i * 0.02 - time.monotonic()))

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.request("BYE")
        self.sip.close()
        self.rtp.close()


def book(stack: Any) -> tuple[str, str]:
    from tests.e2e.conftest import new_user
    from tests.support import ics

    user = new_user(stack)
    now = dt.datetime.now(dt.UTC)
    f = "%Y%m%dT%H%M%S"
    body = ics.event(
        start=(now - dt.timedelta(minutes=5)).strftime(f),
        end=(now + dt.timedelta(hours=2)).strftime(f),
        tz="UTC",
        categories="Audio",
        extra="X-VISIO-LOBBY:FALSE",
    )
    user.put("bench.ics", body)
    stored = user.get("bench.ics").text
    link: str = ics.join_link(stored)
    number = str(ics.vevents(stored)[0]["X-VISIO-ROOM-NUMBER"])
    return link.rsplit("/", 1)[1], number


async def measure(pid: int, seconds: float, legs: list[Leg]) -> dict[str, float]:
    await asyncio.sleep(3.0)  # past the joins and the welcome prompts
    got0 = [leg.received for leg in legs]
    c0, t0 = cpu_seconds(pid), time.monotonic()
    me0 = time.process_time()
    await asyncio.sleep(seconds)
    c1, t1 = cpu_seconds(pid), time.monotonic()
    me = 100 * (time.process_time() - me0) / (t1 - t0)
    got = [leg.received - g for leg, g in zip(legs, got0, strict=True)]
    return {
        "cpu": 100 * (c1 - c0) / (t1 - t0),
        "pps": sum(got) / (t1 - t0) / len(legs) if legs else 0.0,
        "min_pps": min(got) / (t1 - t0) if legs else 0.0,
        "driver": me,
    }


async def bench(args: argparse.Namespace) -> None:
    from tests.phone.sipp import free_udp_port
    from tests.support.stack import Stack

    sizes = [int(x) for x in args.sizes.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        port = free_udp_port()
        stack = Stack(
            Path(tmp) / "stack",
            extra_env={"VISIO_SIP_LISTEN": f"127.0.0.1:{port}", "VISIO_ROOM_CAPACITY": "200"},
        ).start()
        try:
            assert stack.proc is not None
            pid = stack.proc.pid
            token, number = book(stack)
            # The web participants live in their own process: receiving every
            # caller's voice costs them more than the legs cost this one.
            web = await asyncio.create_subprocess_exec(
                sys.executable,
                __file__,
                "--web",
                stack.web_url,
                token,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            assert web.stdout is not None and web.stdin is not None
            await asyncio.wait_for(web.stdout.readline(), 60)
            await asyncio.sleep(2.0)
            base = await measure(pid, args.seconds, [])
            print(f"baseline: 4 web participants, 0 legs: CPU {base['cpu']:5.1f}%", flush=True)
            rows: dict[str, list[tuple[int, float, float, float]]] = {}
            for scenario in SCENARIOS:
                rows[scenario] = []
                for n in sizes:
                    talkers = n if scenario == "all talk" else 1
                    legs = [Leg(("127.0.0.1", port), number, i, i < talkers) for i in range(n)]
                    for leg in legs:
                        await leg.start()
                    r = await measure(pid, args.seconds, legs)
                    per = (r["cpu"] - base["cpu"]) / n
                    rows[scenario].append((n, r["cpu"], per, r["pps"]))
                    print(
                        f"{scenario:<9} N={n:<3} legs: CPU {r['cpu']:5.1f}%  per leg {per:5.2f}%"
                        f" of a core  (each leg received {r['pps']:4.1f} packets/s of 50, the"
                        f" worst {r['min_pps']:4.1f}; driver CPU {r['driver']:4.1f}%)"
                        + (
                            "  STARVED: the server lost ticks, figures unreliable"
                            if r["min_pps"] < 47.5
                            else ""
                        ),
                        flush=True,
                    )
                    for leg in legs:
                        await leg.stop()
                    await asyncio.sleep(1.0)
            web.stdin.close()
            await asyncio.wait_for(web.wait(), 30)
        finally:
            stack.stop()
    for scenario, found in rows.items():
        print(f"\n{scenario}: " + SCENARIOS[scenario])
        if len(found) > 1:
            (n0, cpu0, _, _), (n1, cpu1, _, _) = found[0], found[-1]
            added = (cpu1 - cpu0) / (n1 - n0)
            if added <= 0:
                print("  per added leg: not measurable in this run (the machine was too busy)")
            else:
                print(
                    f"  per added leg (N={n0} -> {n1}): {added:5.2f}% of a core = "
                    f"{100 / added:6.1f} legs per core = {100 / added / TARGET:4.2f} x the target"
                )
        for n, _, per, _ in found:
            legs_per_core = 100 / per if per > 0 else float("nan")
            print(
                f"  N={n:<3} {legs_per_core:6.1f} legs per core"
                f"  = {legs_per_core / TARGET:4.2f} x the target of {TARGET}"
            )


async def web_participants(url: str, token: str) -> None:
    """Worker process: 4 web participants publishing speech until stdin closes."""
    clients = [RoomClient(url, token) for _ in range(4)]
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        for i, c in enumerate(clients):
            await c.connect()
            await c.join(name=f"Web {i}")
            await c.publish({"microphone": SpeechTrack(i)})
        print("ready", flush=True)
        await reader.read()
    finally:
        for c in clients:
            await c.close()


def main() -> None:
    if sys.argv[1:2] == ["--web"]:
        asyncio.run(web_participants(sys.argv[2], sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1,8,16")
    parser.add_argument("--seconds", type=float, default=8.0)
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
