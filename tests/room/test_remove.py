"""Issue 17, finding 3: the organizer removes someone, who cannot come back unless let in.

Plain signalling clients against the real stack (the page's side is in
tests/browser/test_remove.py, the phone's in tests/phone/test_lobby.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.room.signal import NO_LOBBY, Client, book, personal_link
from tests.support.stack import Stack

INVITEE = "invitee@example.org"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("remove")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def test_a_removed_guest_knocks_again_even_without_lobby(user: DavUser) -> None:
    link, _ = book(user, "open-room.ics", extra=NO_LOBBY)

    async def scenario() -> None:
        host = await Client.open(link)
        clients = [host]
        try:
            me = await host.join(login=user.login, password=PASSWORD)
            assert me["type"] == "joined" and me["host"] is True
            guest = await Client.open(link, "127.0.0.61")
            clients.append(guest)
            inside = await guest.join(name="Gaston")
            assert inside["type"] == "joined" and inside["host"] is False
            # The guest sees who organizes; a guest may remove nobody.
            assert [p.get("organizer") for p in inside["participants"]] == [True]
            await guest.send({"type": "remove", "id": me["you"]["id"]})
            refused = await guest.next("error")
            assert (refused["reason"], refused["what"]) == ("not-allowed", "remove")

            await host.next("participant-joined")
            await host.send({"type": "remove", "id": inside["you"]["id"]})
            assert (await guest.next("closed"))["reason"] == "removed"
            assert await guest.closed() == 4000
            assert (await host.next("participant-left"))["id"] == inside["you"]["id"]

            # Back with the same session (a reload): the lobby, not the room.
            back = await Client.open(link, "127.0.0.61")
            clients.append(back)
            knock = await back.join(resume=inside["session"])
            assert knock["type"] == "lobby"
            assert (await host.next("knock"))["name"] == "Gaston"
            # Under another name from the same place: the lobby too.
            disguised = await Client.open(link, "127.0.0.61")
            clients.append(disguised)
            assert (await disguised.join(name="Not Gaston"))["type"] == "lobby"
            # Other guests are not concerned.
            other = await Client.open(link, "127.0.0.62")
            clients.append(other)
            assert (await other.join(name="Odile"))["type"] == "joined"

            # Let back in by the organizer: in, and a reload goes straight in again.
            await host.send({"type": "admit", "id": knock["you"]["id"]})
            again = await back.next("joined")
            reload = await Client.open(link, "127.0.0.61")
            clients.append(reload)
            assert (await reload.join(resume=again["session"]))["type"] == "joined"
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_a_removed_invitee_cannot_come_back_with_their_personal_link(
    stack: Stack, user: DavUser
) -> None:
    link, room_id = book(user, "invited.ics", extra=NO_LOBBY, attendees=(INVITEE,))
    mine = personal_link(stack.data_dir, stack.web_url, room_id, INVITEE)

    async def scenario() -> None:
        host = await Client.open(link)
        clients = [host]
        try:
            me = await host.join(login=user.login, password=PASSWORD)
            invitee = await Client.open(mine, "127.0.0.71")
            clients.append(invitee)
            inside = await invitee.join()
            assert inside["type"] == "joined" and inside["host"] is True
            # A host, but nobody removes the organizer.
            await invitee.send({"type": "remove", "id": me["you"]["id"]})
            refused = await invitee.next("error")
            assert (refused["reason"], refused["what"]) == ("not-allowed", "remove")

            await host.next("participant-joined")
            await host.send({"type": "remove", "id": inside["you"]["id"]})
            assert (await invitee.next("closed"))["reason"] == "removed"

            # The same link, from anywhere: the lobby; refused, the link cools down.
            back = await Client.open(mine, "127.0.0.72")
            clients.append(back)
            knock = await back.join()
            assert knock["type"] == "lobby"
            await host.next("knock")
            await host.send({"type": "refuse", "id": knock["you"]["id"]})
            assert (await back.next("closed"))["reason"] == "refused"
            elsewhere = await Client.open(mine, "127.0.0.73")
            clients.append(elsewhere)
            assert (await elsewhere.join())["reason"] == "cool-down"
        finally:
            await close_all(clients)

    asyncio.run(scenario())
