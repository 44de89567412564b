"""Raised hands, and who may lower them or decide for the lobby (docs/signaling.md, "Inside").

Plain signalling clients against the real stack, each from a loopback address
of its own; meetings booked by PUT into a real user's calendar.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.room.signal import NO_LOBBY, Client, book, personal_link
from tests.support.stack import Stack
from visio_core.identity import Person
from visio_rooms.participant import Participant, PhoneParticipant

INVITEE = "hand-invitee@example.org"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("hand")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def hands(c: Client, pid: str) -> list[bool]:
    """The hand of `pid` in each participant-updated `c` received, in order."""
    return [
        m["participant"]["hand"]
        for m in c.of("participant-updated")
        if m["participant"]["id"] == pid
    ]


async def settled(c: Client) -> None:
    """Wait until the server has handled everything `c` sent before (it answers in order)."""
    mark = len(c.received)
    await c.send({"type": "ping"})
    await c.next("pong", after=mark)


def errors(c: Client) -> list[dict[str, Any]]:
    return [m for m in c.of("error") if m.get("reason") == "not-allowed"]


def test_public_dicts_carry_hand_and_host() -> None:
    caller = PhoneParticipant("c1", "Téléphone …12 34")
    assert caller.public()["hand"] is False and "host" not in caller.public()
    caller.hand = True
    assert caller.public()["hand"] is True

    guest = Participant("g1", Person("Gaston"), web.WebSocketResponse())
    assert guest.public() == {
        "id": "g1",
        "name": "Gaston",
        "audio": True,
        "video": True,
        "hand": False,
    }
    boss = Participant("o1", Person("Olga", "olga"), web.WebSocketResponse(), organizer=True)
    boss.host = True
    assert boss.public()["organizer"] is True and boss.public()["host"] is True


def test_a_raised_hand_is_seen_by_everyone_and_by_late_joiners(user: DavUser) -> None:
    link, _ = book(user, "hands.ics", extra=NO_LOBBY)

    async def scenario() -> None:
        anna = await Client.open(link, "127.0.0.81")
        clients = [anna]
        try:
            a = await anna.join(name="Anna")
            assert a["type"] == "joined"
            aid = a["you"]["id"]
            bob = await Client.open(link, "127.0.0.82")
            clients.append(bob)
            b = await bob.join(name="Bob")
            assert b["participants"] == [
                {"id": aid, "name": "Anna", "audio": True, "video": True, "hand": False}
            ]
            await anna.next("participant-joined")  # Bob is in the room now

            await anna.send({"type": "hand", "up": True})
            assert await bob.wait(lambda c: hands(c, aid)) == [True]
            assert await anna.wait(lambda c: hands(c, aid)) == [True]  # the sender too
            await anna.send({"type": "hand", "up": True})  # already up: nothing to tell
            await settled(anna)
            assert hands(anna, aid) == [True]

            late = await Client.open(link, "127.0.0.83")
            clients.append(late)
            c = await late.join(name="Carla")
            seen = {p["name"]: p for p in c["participants"]}
            assert seen["Anna"]["hand"] is True and seen["Bob"]["hand"] is False
            assert not any("host" in p for p in c["participants"])  # guests, all of them
            await anna.wait(lambda c: len(c.of("participant-joined")) >= 2)  # Carla is in

            await anna.send({"type": "hand", "up": False})
            assert await late.wait(lambda c: hands(c, aid)) == [False]
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_only_hosts_lower_someone_elses_hand_and_nobody_raises_it(
    stack: Stack, user: DavUser
) -> None:
    link, room_id = book(user, "lower.ics", extra=NO_LOBBY, attendees=(INVITEE,))
    mine = personal_link(stack.data_dir, stack.web_url, room_id, INVITEE)

    async def scenario() -> None:
        host = await Client.open(link, "127.0.0.84")
        clients = [host]
        try:
            me = await host.join(login=user.login, password=PASSWORD)
            assert me["type"] == "joined" and me["host"] is True
            raiser = await Client.open(link, "127.0.0.85")
            clients.append(raiser)
            r = await raiser.join(name="Raiser")
            rid = r["you"]["id"]
            # Guests see who hosts: the organizer is one.
            assert [(p.get("organizer"), p.get("host")) for p in r["participants"]] == [
                (True, True)
            ]
            other = await Client.open(link, "127.0.0.86")
            clients.append(other)
            await other.join(name="Other")
            await host.wait(lambda c: len(c.of("participant-joined")) >= 2)

            await raiser.send({"type": "hand", "up": True})
            await other.wait(lambda c: hands(c, rid) == [True])
            # A guest may neither lower nor raise someone else's hand.
            await other.send({"type": "hand", "up": False, "id": rid})
            await other.send({"type": "hand", "up": True, "id": me["you"]["id"]})
            refused = await other.wait(lambda c: errors(c) if len(errors(c)) >= 2 else None)
            assert [e["what"] for e in refused] == ["hand", "hand"]
            # The hand is still up for whoever comes in now.
            late = await Client.open(link, "127.0.0.87")
            clients.append(late)
            seen = {p["name"]: p for p in (await late.join(name="Late"))["participants"]}
            assert seen["Raiser"]["hand"] is True and seen["Other"]["hand"] is False
            await host.wait(lambda c: len(c.of("participant-joined")) >= 3)  # Late is in

            # Not even a host raises someone's hand; an unknown id is ignored quietly.
            await host.send({"type": "hand", "up": True, "id": rid})
            assert (await host.next("error"))["what"] == "hand"
            await host.send({"type": "hand", "up": False, "id": "nobody"})
            await settled(host)
            assert len(errors(host)) == 1
            # The organizer lowers it: everyone sees it down.
            await host.send({"type": "hand", "up": False, "id": rid})
            assert await raiser.wait(lambda c: hands(c, rid) == [True, False])
            assert await late.wait(lambda c: hands(c, rid) == [False])

            # An invitee (personal link) is a host too.
            invitee = await Client.open(mine, "127.0.0.88")
            clients.append(invitee)
            inside = await invitee.join()
            assert inside["type"] == "joined" and inside["host"] is True
            iid = inside["you"]["id"]
            await raiser.wait(
                lambda c: [m for m in c.of("participant-joined") if m["participant"]["id"] == iid]
            )
            await raiser.send({"type": "hand", "up": True})
            await invitee.wait(lambda c: hands(c, rid) == [True])
            await invitee.send({"type": "hand", "up": False, "id": rid})
            assert await other.wait(lambda c: hands(c, rid) == [True, False, True, False])
            # Others see the invitee as a host, not as the organizer.
            joined = [m["participant"] for m in other.of("participant-joined")]
            invitee_p = next(p for p in joined if p["id"] == iid)
            assert invitee_p["host"] is True and "organizer" not in invitee_p
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_guests_decide_for_the_lobby_only_while_no_host_is_in(stack: Stack, user: DavUser) -> None:
    link, room_id = book(user, "lobby-rights.ics", attendees=(INVITEE,))
    mine = personal_link(stack.data_dir, stack.web_url, room_id, INVITEE)

    async def scenario() -> None:
        host = await Client.open(link, "127.0.0.91")
        clients = [host]
        try:
            assert (await host.join(login=user.login, password=PASSWORD))["host"] is True
            guest = await Client.open(link, "127.0.0.92")
            clients.append(guest)
            knock = await guest.join(name="Guest")
            assert knock["type"] == "lobby"
            await host.next("knock")
            await host.send({"type": "admit", "id": knock["you"]["id"]})
            assert (await guest.next("joined"))["host"] is False

            waiting = await Client.open(link, "127.0.0.93")
            clients.append(waiting)
            kid = (await waiting.join(name="Waiting"))["you"]["id"]
            await guest.wait(lambda c: [k for k in c.of("knock") if k["id"] == kid])
            # A host is inside: the guest may neither admit nor refuse.
            await guest.send({"type": "admit", "id": kid})
            await guest.send({"type": "refuse", "id": kid})
            refused = await guest.wait(lambda c: errors(c) if len(errors(c)) >= 2 else None)
            assert [e["what"] for e in refused] == ["lobby", "lobby"]
            # Still knocking: someone coming in now is shown the knock.
            invitee = await Client.open(mine, "127.0.0.94")
            clients.append(invitee)
            inside = await invitee.join()
            assert inside["host"] is True
            assert [k["id"] for k in inside["knocks"]] == [kid]
            assert waiting.of("joined", "closed") == []

            # Both hosts leave: now the guests decide, or nobody would.
            await host.close()
            await invitee.close()
            await guest.wait(lambda c: len(c.of("participant-left")) >= 2)
            await guest.send({"type": "admit", "id": kid})
            assert (await waiting.next("joined"))["type"] == "joined"
            assert await guest.wait(lambda c: kid in [m["id"] for m in c.of("knock-resolved")])
            await guest.wait(
                lambda c: [m for m in c.of("participant-joined") if m["participant"]["id"] == kid]
            )

            third = await Client.open(link, "127.0.0.95")
            clients.append(third)
            tid = (await third.join(name="Third"))["you"]["id"]
            await waiting.wait(lambda c: [k for k in c.of("knock") if k["id"] == tid])
            await waiting.send({"type": "refuse", "id": tid})
            assert (await third.next("closed"))["reason"] == "refused"
            assert errors(waiting) == []
        finally:
            await close_all(clients)

    asyncio.run(scenario())
