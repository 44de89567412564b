"""A phone call arriving at one node for a room hosted on another (issue 16).

Three real nodes (tests/support/cluster.py) in the phone tests' loopback
namespace; only node a runs the SIP gateway, as where a PBX or an ISDN-to-SIP
gateway sends its calls. A participant joins a room through node b, which
places it; rooms are opened one after the other until one lands on a node
other than a (each participant stays inside: a's load grows, so the next room
goes elsewhere). A sipp caller dials that room's number at node a: node a's
gateway reaches the room over the host's `/internal/phone/{room_id}` with a
signed route word. The participant sees the caller come in as a phone
participant and receives its voice; the caller hears the room; hanging up
takes the caller out.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import new_user
from tests.phone import pcap, sipp
from tests.phone.conftest import ALLOWED, TRUNK, Meeting, book
from tests.support import aio
from tests.support.cluster import Cluster, three_nodes
from visio_rooms.client import RoomClient

CALLER = "0677889913"
SHOWN = "Téléphone …99 13"


@pytest.fixture(scope="module")
def sip_port() -> int:
    return sipp.free_udp_port()


@pytest.fixture(scope="module")
def cluster(
    namespace: None, tmp_path_factory: pytest.TempPathFactory, postgres_url: str, sip_port: int
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("phone-cluster")
    secret = root / "sip-password"
    secret.write_text(TRUNK[1] + "\n")
    gateway = {
        "VISIO_SIP_LISTEN": f"127.0.0.1:{sip_port}",
        "VISIO_SIP_ALLOW": ALLOWED,
        "VISIO_SIP_USER": TRUNK[0],
        "VISIO_SIP_PASSWORD_FILE": str(secret),
    }
    with three_nodes(root, postgres_url, per_node={"a": gateway}) as nodes:
        yield nodes


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return value


def test_a_call_at_node_a_reaches_a_room_hosted_on_another_node(
    cluster: Cluster, sip_port: int, tmp_path: Path
) -> None:
    user = new_user(cluster.nodes["a"])

    async def scenario() -> tuple[str, str, int, float]:
        clients: list[RoomClient] = []
        call: sipp.Sipp | None = None
        ear = sipp.RtpReceiver()
        try:
            target: tuple[Meeting, RoomClient, str] | None = None
            for i in range(4):
                meeting = book(user, f"room{i}.ics")
                token = meeting.link.rsplit("/j/", 1)[1]
                client = RoomClient(cluster.nodes["b"].web_url, token)
                clients.append(client)
                await client.connect()
                assert (await client.join(name=f"Person {i}"))["type"] == "joined"
                host = await asyncio.wait_for(cluster.host_of(meeting.room_id), 30)
                if host != "a":
                    target = (meeting, client, host)
                    break
            assert target is not None, "every room was placed on node a"
            meeting, inside, host = target

            keys = pcap.keys(tmp_path / "keys.pcap", meeting.number + "#")
            voice = pcap.speech(tmp_path / "voice.pcap", repeat=4)
            steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(4000)
            steps += sipp.play(voice) + sipp.pause(12000)
            plan = sipp.scenario(tmp_path / "call.xml", steps, caller=CALLER, media_port=ear.port)
            call = sipp.call(plan, ("127.0.0.1", sip_port))

            def caller() -> dict[str, Any] | None:
                return next((p for p in inside.participants.values() if p.get("phone")), None)

            phone = await until(caller, "the caller in the room", timeout=60)
            joined = time.monotonic()
            assert phone["name"] == SHOWN, phone
            # Node a's gateway logs where it handed the call once the room says it is in.
            line = f"…13 (127.0.0.1) joined room {meeting.room_id} on node {host}"
            await until(lambda: line in cluster.nodes["a"].log_text(), "node a's log of the call")

            def voice_frames() -> int:
                return sum(
                    inside.frames[s["mid"]]
                    for s in inside.slots
                    if s["kind"] == "audio" and s["participant"] == phone["id"]
                )

            await until(lambda: voice_frames() >= 25, "the caller's voice at the participant")
            # The caller hears "Vous entrez dans la réunion…", laid over the host's mix.
            await until(lambda: ear.voiced_since(joined) >= 1.0, "the joined prompt at the caller")

            # The caller's slot goes with them: count its frames until the hang-up.
            most = 0

            def gone() -> bool:
                nonlocal most
                most = max(most, voice_frames())
                return phone["id"] not in inside.participants

            hung_up = asyncio.ensure_future(asyncio.to_thread(call.wait, 90))
            await until(gone, "the caller gone after hanging up", timeout=120)
            assert await hung_up == 0, call.output()
            return meeting.room_id, host, most, ear.voiced_since(joined)
        finally:
            if call is not None:
                call.stop()
            ear.close()
            for client in clients:
                await client.close()

    room_id, host, frames, voiced = aio.run(scenario())
    print(
        f"call at node a, room on node {host}: {frames} audio frames of the caller at the "
        f"participant; {voiced:.1f} s of voice heard by the caller"
    )
    placed = f"room {room_id} placed on worker-"
    assert placed in cluster.nodes[host].log_text()
    assert placed not in cluster.nodes["a"].log_text()  # node a only relayed the call
