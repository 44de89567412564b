"""Issue 17, finding 3, by phone: a caller cannot skip the lobby, and can be removed.

The room number is on every join page, so a guest waiting in the lobby can read
it; with the lobby on, a caller knocks like a web guest, hears that they wait,
and comes in only when someone inside lets them in. The organizer is a plain
signalling client (tests/room/signal.py); the caller is a real sipp call whose
audio goes to an RtpReceiver (what the caller hears).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from tests.e2e.conftest import PASSWORD, DavUser
from tests.phone import pcap, sipp
from tests.phone.conftest import PhoneStack, book
from tests.room.signal import Client
from tests.support import aio
from tests.support.stack import wait_for


def dial(number: str) -> str:
    return number + "#"


async def organizer(link: str, user: DavUser) -> Client:
    host = await Client.open(link)
    me = await host.join(login=user.login, password=PASSWORD)
    assert me["type"] == "joined" and me["host"] is True
    return host


async def heard(ear: sipp.RtpReceiver, since: float, seconds: float, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while ear.voiced_since(since) < seconds:
        assert time.monotonic() < deadline, f"less than {seconds} s of voice since {since}"
        await asyncio.sleep(0.1)


# An address of its own (inside the gateway's allowed 127.0.0.0/29): test_dialin's rate-limit test
# blocks 127.0.0.5 for 15 minutes in the package's shared gateway.
CALLER_IP = "127.0.0.6"


def place(
    work: Path, phone: PhoneStack, name: str, number: str, caller: str, ear: sipp.RtpReceiver
) -> sipp.Sipp:
    """A call that keys in the room number, then stays until our BYE (a minute at most)."""
    keys = pcap.keys(work / f"{name}.pcap", dial(number))
    steps = sipp.pause(500) + sipp.play(keys)
    scenario = sipp.scenario(
        work / f"{name}.xml",
        steps,
        caller=caller,
        media_port=ear.port,
        end="wait_bye",
        timeout_ms=60000,
    )
    return sipp.call(scenario, phone.sip, local_ip=CALLER_IP)


def test_a_caller_waits_in_the_lobby_until_let_in_and_is_hung_up_when_removed(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    meeting = book(user, "lobby-phone.ics", extra="")  # the lobby on, as by default

    async def scenario() -> None:
        host = await organizer(meeting.link, user)
        ear = sipp.RtpReceiver(host=CALLER_IP)
        call = place(work, phone_stack, "waiting", meeting.number, "0611112222", ear)
        try:
            knock = await host.next("knock", timeout=40)
            assert knock["name"] == "Téléphone …22 22" and knock["phone"] is True
            knocked = time.monotonic()
            await heard(ear, knocked, 1.5)  # "Veuillez patienter…"
            assert not host.of("participant-joined")  # not in before being let in
            assert call.proc.poll() is None  # and still on the line

            mark = len(host.received)
            await host.send({"type": "admit", "id": knock["id"]})
            joined = await host.next("participant-joined", after=mark)
            caller = joined["participant"]
            assert caller["phone"] is True and caller["name"] == "Téléphone …22 22"

            await host.send({"type": "remove", "id": caller["id"]})
            assert (await host.next("participant-left", after=mark))["id"] == caller["id"]
            removed = time.monotonic()
            assert await asyncio.to_thread(call.wait, 60) == 0, call.output()  # our BYE
            assert ear.voiced_since(removed) >= 1.0  # "Vous avez été retiré…"
            wait_for(lambda: "ends: removed" in phone_stack.log(), timeout=10, what="log")
        finally:
            call.stop()
            ear.close()
            await host.close()

    aio.run(scenario())


def test_a_removed_number_knocks_when_calling_again_even_without_lobby(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    meeting = book(user, "open-phone.ics")  # X-VISIO-LOBBY:FALSE: callers come straight in

    async def scenario() -> None:
        host = await organizer(meeting.link, user)
        ears = [sipp.RtpReceiver(host=CALLER_IP) for _ in range(3)]
        calls: list[sipp.Sipp] = []
        try:
            calls.append(place(work, phone_stack, "first", meeting.number, "0633334444", ears[0]))
            joined = await host.next("participant-joined", timeout=40)
            assert joined["participant"]["name"] == "Téléphone …44 44"
            await host.send({"type": "remove", "id": joined["participant"]["id"]})
            assert await asyncio.to_thread(calls[0].wait, 60) == 0, calls[0].output()

            # The same number again: it knocks, and a refusal ends the call.
            mark = len(host.received)
            calls.append(place(work, phone_stack, "again", meeting.number, "0633334444", ears[1]))
            knock = await host.next("knock", after=mark, timeout=40)
            assert knock["name"] == "Téléphone …44 44"
            assert not host.of("participant-joined")[1:]
            await host.send({"type": "refuse", "id": knock["id"]})
            refused = time.monotonic()
            assert await asyncio.to_thread(calls[1].wait, 60) == 0, calls[1].output()
            assert ears[1].voiced_since(refused) >= 1.0  # "Votre demande d'entrée a été refusée"

            # Another number is not concerned: straight in.
            mark = len(host.received)
            calls.append(place(work, phone_stack, "other", meeting.number, "0655556666", ears[2]))
            other = await host.next("participant-joined", after=mark, timeout=40)
            assert other["participant"]["name"] == "Téléphone …66 66"
            assert not host.of("knock")[1:]
            await host.send({"type": "remove", "id": other["participant"]["id"]})
            assert await asyncio.to_thread(calls[2].wait, 60) == 0, calls[2].output()
        finally:
            for call in calls:
                call.stop()
            for ear in ears:
                ear.close()
            await host.close()

    aio.run(scenario())
