"""A media worker whose event loop falls behind keeps its connections (issue 15's collapse).

Found by bench/workers.py and reproduced by bench/overload.py: one worker holding
two rooms of 50 ran its loop 0.1-0.2 s late, read the ICE consent answers of its
busiest sockets seconds late, and aioice, which gives an answer 0.5 s and hangs
up after six misses, closed those connections 30 s in: cameras stopped for
everyone watching them, and the pages were never told. This test puts the same
situations on a real `visio serve` with the reference client, without needing a
loaded machine: a publisher whose consent answers reach the worker late (what an
overloaded loop makes of them), and one whose media went silent (a page whose
network died without a goodbye). The other half of that report (joins left
unanswered past 100 pages on a worker: the front's connection pool) is
tests/room/test_workers.py's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aioice import stun

from bench.sfu_clip import EncodedClip, encode_clip
from tests.e2e.conftest import new_user
from tests.room.signal import NO_LOBBY, book
from tests.support.aio import run
from tests.support.stack import Stack
from visio_rooms.client import RoomClient

LATE = 2.0  # s: how late the worker gets a publisher's answers (aioice gave them 0.5 s)
MISSES = 7  # aioice closed the connection after 6 unanswered consent checks


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("overload"), extra_env={"VISIO_MEDIA_WORKERS": "1"})
    s.start()
    try:
        yield s
    finally:
        s.stop()


async def until(predicate: Callable[[], object], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.05)


def ice_of(client: RoomClient) -> Any:
    """The aioice connection under a client's publish connection (bundled: one)."""
    assert client.pub_pc is not None
    return client.pub_pc.getTransceivers()[0].sender.transport.transport._connection


def answer_late(client: RoomClient, seconds: float) -> set[bytes]:
    """From now on the STUN answers this client sends on its publish connection leave
    `seconds` late; returns the transaction ids answered so (it fills as they come)."""
    loop = asyncio.get_running_loop()
    answered: set[bytes] = set()
    for protocol in ice_of(client)._protocols:
        send = protocol.send_stun

        def late(message: stun.Message, addr: tuple[str, int], send: Any = send) -> None:
            if message.message_class != stun.Class.RESPONSE:
                send(message, addr)
                return
            answered.add(message.transaction_id)
            loop.call_later(seconds, send, message, addr)

        protocol.send_stun = late
    return answered


def go_silent(client: RoomClient, camera: EncodedClip) -> None:
    """The publish connection's network dies: nothing sent, nothing read, no goodbye."""
    camera.set_paused(True)
    for protocol in ice_of(client)._protocols:
        protocol.transport.pause_reading()
        protocol.send_stun = lambda message, addr: None


def frames_from(client: RoomClient, participant: str) -> int:
    return client.video_frames(participant=participant)


def showing(client: RoomClient, participant: str) -> bool:
    return any(s["participant"] == participant for s in client.slots if s["kind"] == "video")


def test_late_answers_keep_the_connection_and_a_dead_one_is_told_to_come_back(
    stack: Stack,
) -> None:
    link, _ = book(new_user(stack), "overload.ics", extra=NO_LOBBY)
    token = link.rsplit("/", 1)[1]
    clip = encode_clip(160, 120, 15, 100_000)

    async def scenario() -> None:
        async with (
            RoomClient(stack.web_url, token) as late,
            RoomClient(stack.web_url, token) as gone,
            RoomClient(stack.web_url, token) as viewer,
        ):
            ids = {}
            for c, name in ((late, "Late"), (gone, "Gone"), (viewer, "Viewer")):
                ids[name] = (await c.join(name=name))["you"]["id"]
            late_cam, gone_cam = EncodedClip(clip, 15), EncodedClip(clip, 15)
            await late.publish({"camera": late_cam}, pre_encoded=True)
            await gone.publish({"camera": gone_cam}, pre_encoded=True)
            await until(
                lambda: (
                    frames_from(viewer, ids["Late"]) > 15 and frames_from(viewer, ids["Gone"]) > 15
                ),
                30,
            )

            answered = answer_late(late, LATE)
            go_silent(gone, gone_cam)
            # The worker hears nothing from Gone any more: once its consent runs out
            # (about 40 s) it closes Gone's socket with "restart", as for a worker
            # restart, so that the page rebuilds its connections.
            closed = await gone.expect("socket-closed", timeout=150)
            assert closed["code"] == 1012, closed
            # Meanwhile every consent check on Late's connection was answered LATE s
            # late; aioice alone had hung up after the sixth.
            await until(lambda: len(answered) >= MISSES, 90)
            assert late.socket_open
            assert late.pub_pc is not None and late.pub_pc.connectionState == "connected"
            seen = frames_from(viewer, ids["Late"])
            await until(lambda: frames_from(viewer, ids["Late"]) > seen + 15, 30)

            # Gone comes back (its resume word, new connections) and is seen again.
            assert (await gone.rejoin(timeout=30))["type"] == "joined"
            await gone.publish({"camera": EncodedClip(clip, 15)}, pre_encoded=True)
            await until(lambda: showing(viewer, ids["Gone"]), 30)
            seen = frames_from(viewer, ids["Gone"])
            await until(lambda: frames_from(viewer, ids["Gone"]) > seen + 15, 30)

    run(scenario())
    log = stack.log_text()
    assert "ICE consent expired" in log
    assert "publish connection" in log and "the page is told to reconnect" in log
