"""The gateway's SIP transactions, in-process over real UDP sockets (no media, no stack).

No media worker either: these calls never get past the room number (the rooms
live in the workers; test_workers.py reaches one through a whole stack)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path

from conference_backend.phone import sip
from conference_backend.phone.gateway import PhoneGateway, info_key
from conference_backend.phone.remote import RoomSocket
from visio_core.db import Database
from visio_core.registry import Registry
from visio_core.settings import resolve

OFFER = (
    "v=0\r\no=t 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio {port} RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
)


def request(method: str, call_id: str, port: int, *, to: str = "", body: str = "", cseq: int = 1,
            kind: str = "application/sdp") -> bytes:  # fmt: skip
    lines = [
        f"{method} sip:visio@127.0.0.1 SIP/2.0",
        f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{call_id}{cseq}",
        f"From: <sip:0611223344@127.0.0.1>;tag=t{call_id}",
        f"To: {to or '<sip:visio@127.0.0.1>'}",
        f"Call-ID: {call_id}",
        f"CSeq: {cseq} {method}",
        f"Contact: <sip:caller@127.0.0.1:{port}>",
    ]
    if body:
        lines.append(f"Content-Type: {kind}")
    lines.append(f"Content-Length: {len(body.encode())}")
    return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()


Test = Callable[[PhoneGateway, socket.socket], Awaitable[None]]


class NoWorkers:
    """The gateway's view of the rooms (remote.Rooms) when no media worker serves."""

    async def people(self, room_id: str) -> int:
        return 0

    async def connect(self, room_id: str) -> RoomSocket | None:
        return None


def run(tmp: Path, allow: str, test: Test) -> None:
    async def scenario() -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings = resolve(
            {},
            {
                "VISIO_DATA_DIR": str(tmp),
                "VISIO_SIP_LISTEN": f"127.0.0.1:{port}",
                "VISIO_SIP_ALLOW": allow,
            },
        )
        registry = Registry(Database(settings.database))
        gateway = PhoneGateway(settings, registry, NoWorkers())
        await gateway.start()
        peer = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        peer.bind(("127.0.0.1", 0))
        peer.setblocking(False)
        try:
            await test(gateway, peer)
        finally:
            peer.close()
            await gateway.stop()

    tmp.mkdir(parents=True, exist_ok=True)
    # A thread of its own: Playwright's sync API may hold this thread's event loop.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario()).result(timeout=60)


async def replies(peer: socket.socket, until: int, timeout: float = 3.0) -> list[sip.Message]:
    """Responses received until one with status >= `until` (or the timeout)."""
    loop = asyncio.get_running_loop()
    got: list[sip.Message] = []
    try:
        async with asyncio.timeout(timeout):
            while not got or got[-1].status < until:
                got.append(sip.parse(await loop.sock_recv(peer, 65536)))
    except TimeoutError:
        pass
    return got


def gw(g: PhoneGateway) -> tuple[str, int]:
    return (g.host, g.port)


def test_transactions_of_a_call(tmp_path: Path) -> None:
    async def test(g: PhoneGateway, peer: socket.socket) -> None:
        me = peer.getsockname()[1]
        peer.sendto(b"\x00garbage\r\n\r\n", gw(g))  # dropped without an answer
        peer.sendto(request("OPTIONS", "o1", me), gw(g))
        (ok,) = await replies(peer, 200)
        assert ok.status == 200 and "INVITE" in (ok.get("allow") or "")
        peer.sendto(request("MESSAGE", "m1", me, body="hi", kind="text/plain"), gw(g))
        assert (await replies(peer, 200))[-1].status == 405
        peer.sendto(request("BYE", "nope", me), gw(g))
        assert (await replies(peer, 200))[-1].status == 481
        peer.sendto(request("INVITE", "n1", me), gw(g))  # no offer: we make none
        assert (await replies(peer, 200))[-1].status == 488

        media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the prompts go there
        media.bind(("127.0.0.1", 0))
        offer = OFFER.format(port=media.getsockname()[1])
        peer.sendto(request("INVITE", "c1", me, body=offer), gw(g))
        trying, answer = await replies(peer, 200)
        assert trying.status == 100 and answer.status == 200
        assert "m=audio" in answer.body.decode() and "101 telephone-event" in answer.body.decode()
        tag = sip.param(answer.get("to") or "", "tag")
        # Our 200 is retransmitted until the ACK comes, unchanged.
        again = await replies(peer, 200, timeout=1.5)
        assert again and again[-1].get("to") == answer.get("to")
        to = answer.get("to") or ""
        peer.sendto(request("ACK", "c1", me, to=to), gw(g))
        peer.sendto(request("INVITE", "c1", me, to=to, body=offer, cseq=2), gw(g))
        (reinvite,) = await replies(peer, 200)
        assert reinvite.status == 200 and reinvite.body == answer.body
        assert sip.param(reinvite.get("to") or "", "tag") == tag
        dtmf = "Signal=5\r\nDuration=160\r\n"
        peer.sendto(
            request("INFO", "c1", me, to=to, body=dtmf, cseq=3, kind="application/dtmf-relay"),
            gw(g),
        )
        assert (await replies(peer, 200))[-1].status == 200
        peer.sendto(request("BYE", "c1", me, to=to, cseq=4), gw(g))
        bye = [r for r in await replies(peer, 200) if r.cseq()[1] == "BYE"]
        assert bye and bye[-1].status == 200
        for _ in range(50):
            if not g.dialogs:
                break
            await asyncio.sleep(0.02)
        assert not g.dialogs
        media.close()

    run(tmp_path / "data", "127.0.0.0/8", test)


def test_outside_the_allow_list_without_credentials_is_forbidden(tmp_path: Path) -> None:
    async def test(g: PhoneGateway, peer: socket.socket) -> None:
        me = peer.getsockname()[1]
        peer.sendto(request("INVITE", "x1", me, body=OFFER.format(port=me)), gw(g))
        assert [r.status for r in await replies(peer, 200)] == [403]
        assert not g.dialogs

    run(tmp_path / "data", "10.0.0.0/8", test)


def test_info_bodies() -> None:
    def info(kind: str, body: str) -> sip.Message:
        return sip.parse(request("INFO", "i", 5060, body=body, kind=kind))

    assert info_key(info("application/dtmf-relay", "Signal=#\r\nDuration=100")) == "#"
    assert info_key(info("application/dtmf-relay", "Signal=11\r\n")) == "#"
    assert info_key(info("application/dtmf", "7")) == "7"
    assert info_key(info("application/dtmf", "77")) is None
    assert info_key(info("text/plain", "Signal=5")) is None
