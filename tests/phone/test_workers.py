"""A phone caller (sipp) in a room that lives on worker 2, not in the front.

The stack runs two media workers. Rooms are opened one after the other, each by
a signalling participant (visio_rooms.client.RoomClient), until one is
placed on worker-2 (serve.log says where each room went). A sipp caller then
dials that room's number: the gateway in the front hands the call to the room's
worker, the participant sees the caller come in and receives its voice, and the
caller hears the room (the "joined" prompt, which only plays while the worker's
mix paces the line). When the room's worker dies under a call, the caller is
told the connection was lost and hung up.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import new_user
from tests.phone import pcap, sipp
from tests.phone.conftest import PhoneStack, book, start_phone_stack
from tests.support import aio
from visio_rooms.client import RoomClient

PLACED = re.compile(r"room (\S+) placed on (worker-\d+) \(pid (\d+)\)")
CALLER = "0677889912"
SHOWN = "Téléphone …99 12"


@pytest.fixture(scope="module")
def two_workers(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneStack]:
    phone = start_phone_stack(tmp_path_factory.mktemp("two-workers"), {"VISIO_MEDIA_WORKERS": "2"})
    try:
        yield phone
    finally:
        phone.stack.stop()


async def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)
    return value


def placed_on(log: str, room_id: str) -> str | None:
    return next((m.group(2) for m in PLACED.finditer(log) if m.group(1) == room_id), None)


def test_a_caller_joins_a_room_that_lives_on_worker_2(two_workers: PhoneStack, work: Path) -> None:
    stack = two_workers.stack
    user = new_user(stack)

    async def scenario() -> None:
        clients: list[RoomClient] = []
        calls: list[sipp.Sipp] = []
        ear = sipp.RtpReceiver()
        try:
            # Idle workers: the first room goes to worker-1 (ties go by name), the next to
            # the one with fewer rooms; a few more tries absorb a busy machine's CPU noise.
            target = None
            for i in range(4):
                meeting = book(user, f"room{i}.ics")
                token = meeting.link.rsplit("/j/", 1)[1]
                client = RoomClient(stack.web_url, token)
                clients.append(client)
                await client.connect()
                assert (await client.join(name=f"Person {i}"))["type"] == "joined"
                worker = await until(
                    lambda m=meeting: placed_on(stack.log_text(), m.room_id), "placement"
                )
                if worker == "worker-2":
                    target = (meeting, client)
                    break
            assert target is not None, "no room was placed on worker-2"
            meeting, inside = target

            keys = pcap.keys(work / "keys.pcap", meeting.number + "#")
            voice = pcap.speech(work / "voice.pcap", repeat=4)
            steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(4000)
            steps += sipp.play(voice) + sipp.pause(12000)
            scenario = sipp.scenario(work / "w2.xml", steps, caller=CALLER, media_port=ear.port)
            calls.append(sipp.call(scenario, two_workers.sip))

            def caller() -> dict[str, Any] | None:
                return next((p for p in inside.participants.values() if p.get("phone")), None)

            phone = await until(caller, "the caller in the room", timeout=40)
            joined = time.monotonic()
            assert phone["name"] == SHOWN
            assert placed_on(stack.log_text(), meeting.room_id) == "worker-2"
            # The front logs where it handed the call once the worker says the caller is in.
            line = f"…12 (127.0.0.1) joined room {meeting.room_id} on worker-2"
            await until(lambda: line in stack.log_text(), "the front's log of the call")

            # The caller's voice reaches the participant on the slot that carries it.
            def voice_frames() -> int:
                return sum(
                    inside.frames[s["mid"]]
                    for s in inside.slots
                    if s["kind"] == "audio" and s["participant"] == phone["id"]
                )

            await until(lambda: voice_frames() >= 25, "the caller's voice at the participant")
            # The caller hears "Vous entrez dans la réunion…", laid over the worker's mix.
            await until(lambda: ear.voiced_since(joined) >= 1.0, "the joined prompt at the caller")

            assert await asyncio.to_thread(calls[0].wait, 60) == 0, calls[0].output()
            await until(lambda: phone["id"] not in inside.participants, "the caller gone")
        finally:
            for call in calls:
                call.stop()
            ear.close()
            for client in clients:
                await client.close()

    aio.run(scenario())


def test_a_caller_whose_rooms_worker_dies_hears_so_and_is_hung_up(
    two_workers: PhoneStack, work: Path
) -> None:
    stack = two_workers.stack
    user = new_user(stack)
    meeting = book(user, "doomed.ics")

    async def scenario() -> None:
        ear = sipp.RtpReceiver(host="127.0.0.2")
        token = meeting.link.rsplit("/j/", 1)[1]
        inside = RoomClient(stack.web_url, token)
        call: sipp.Sipp | None = None
        try:
            await inside.connect()
            assert (await inside.join(name="Witness"))["type"] == "joined"
            keys = pcap.keys(work / "keys.pcap", meeting.number + "#")
            steps = sipp.pause(500) + sipp.play(keys)
            scenario = sipp.scenario(
                work / "doomed.xml",
                steps,
                caller="0677000077",
                media_port=ear.port,
                end="wait_bye",
                timeout_ms=60000,
            )
            call = sipp.call(scenario, two_workers.sip, local_ip="127.0.0.2")
            await until(
                lambda: any(p.get("phone") for p in inside.participants.values()),
                "the caller in the room",
                timeout=40,
            )
            found = next(m for m in PLACED.finditer(stack.log_text()) if m[1] == meeting.room_id)
            os.kill(int(found[3]), signal.SIGKILL)  # the room's worker, started by our stack
            killed = time.monotonic()
            assert await asyncio.to_thread(call.wait, 60) == 0, call.output()  # our BYE came
            # Between the worker's death and the BYE: "La liaison avec la réunion a été perdue…"
            assert ear.voiced_since(killed) >= 1.0
            ended = "…77 (127.0.0.2) ends: the room's worker went away"
            await until(lambda: ended in stack.log_text(), "the front's log of the call")
        finally:
            if call is not None:
                call.stop()
            ear.close()
            await inside.close()

    aio.run(scenario())
