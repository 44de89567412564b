"""Issue 17, finding 7: what one client may cost the signalling, against the real stack.

Floods come from plain WebSocket clients (no media), each address a loopback
address of its own (127.0.0.x). The stack runs with the default limits except a
short join deadline and refusal cool-down, so the tests can see both end.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterator

import aiohttp
import pytest

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.room.signal import NO_LOBBY, Client, book
from tests.support.stack import Stack

JOIN_TIMEOUT = 2
COOLDOWN = 4
KNOCK_CAP = 20  # the defaults (README, "Limits")
SOCKET_CAP = 20
CHAT_MAX = 1000
CHAT_BURST = 10


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"VISIO_JOIN_TIMEOUT": str(JOIN_TIMEOUT), "VISIO_REFUSAL_COOLDOWN": str(COOLDOWN)}
    s = Stack(tmp_path_factory.mktemp("limits"), extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


async def organizer(link: str, user: DavUser, source: str = "127.0.0.1") -> Client:
    c = await Client.open(link, source)
    answer = await c.join(login=user.login, password=PASSWORD)
    assert answer["type"] == "joined" and answer["host"] is True
    return c


async def close_all(clients: list[Client]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def test_knock_flood_gives_the_organizer_at_most_the_cap(user: DavUser) -> None:
    link, _ = book(user, "flood.ics")

    async def scenario() -> None:
        host = await organizer(link, user)
        guests: list[Client] = []
        try:
            # 41 knocks from three addresses (each under the per-address socket cap).
            for i in range(41):
                guests.append(await Client.open(link, f"127.0.0.{11 + i % 3}"))
            answers = await asyncio.gather(
                *(g.join(name=f"Flood {i}") for i, g in enumerate(guests))
            )
            kinds = [a["type"] for a in answers]
            assert kinds.count("lobby") == KNOCK_CAP
            refused = [a for a in answers if a["type"] == "closed"]
            assert len(refused) == 41 - KNOCK_CAP
            assert {a["reason"] for a in refused} == {"lobby-full"}
            await host.wait(lambda c: len(c.of("knock")) >= KNOCK_CAP)
            # Someone coming in now is shown exactly the knocks the lobby holds.
            second = await organizer(link, user, "127.0.0.2")
            guests.append(second)
            assert len(second.of("joined")[0]["knocks"]) == KNOCK_CAP
            assert len(host.of("knock")) == KNOCK_CAP
            # One waiting guest leaves: a place frees, the next knock is taken.
            waiting = [g for g, a in zip(guests, answers, strict=False) if a["type"] == "lobby"]
            await waiting[0].close()
            await host.wait(lambda c: len(c.of("knock-resolved")) >= 1)
            late = await Client.open(link, "127.0.0.14")
            guests.append(late)
            assert (await late.join(name="Late"))["type"] == "lobby"
        finally:
            await close_all([host, *guests])

    asyncio.run(scenario())


def test_a_refused_guest_cools_down_before_knocking_again(user: DavUser) -> None:
    link, _ = book(user, "cooldown.ics")

    async def scenario() -> None:
        host = await organizer(link, user)
        clients = [host]
        try:
            first = await Client.open(link, "127.0.0.21")
            clients.append(first)
            knock = await first.join(name="Mallory")
            assert knock["type"] == "lobby"
            await host.next("knock")
            await host.send({"type": "refuse", "id": knock["you"]["id"]})
            assert (await first.next("closed"))["reason"] == "refused"

            # Same address, another name, at once: refused with the time left, no knock shown.
            again = await Client.open(link, "127.0.0.21")
            clients.append(again)
            answer = await again.join(name="Not Mallory")
            assert (answer["type"], answer["reason"]) == ("error", "cool-down")
            assert 0 < answer["retryAfter"] <= COOLDOWN
            # Another address is not held back, and its knock is the next one shown.
            other = await Client.open(link, "127.0.0.22")
            clients.append(other)
            assert (await other.join(name="Olivia"))["type"] == "lobby"
            knocks = await host.wait(lambda c: c.of("knock") if len(c.of("knock")) >= 2 else None)
            assert [k["name"] for k in knocks] == ["Mallory", "Olivia"]

            # Once the cool-down is over, the address may knock again (same socket, retried).
            started = time.monotonic()
            while True:
                answer = await again.join(name="Mallory again")
                if answer["type"] == "lobby":
                    break
                assert answer["reason"] == "cool-down"
                assert time.monotonic() - started < 30
                await asyncio.sleep(0.5)  # a person retrying, not a wait for the server
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_chat_flood_is_rate_limited_and_the_sender_told(user: DavUser) -> None:
    link, _ = book(user, "chat-flood.ics", extra=NO_LOBBY)

    async def scenario() -> None:
        sender = await Client.open(link, "127.0.0.31")
        reader = await Client.open(link, "127.0.0.32")
        try:
            assert (await sender.join(name="Flooder"))["type"] == "joined"
            assert (await reader.join(name="Reader"))["type"] == "joined"
            await sender.next("participant-joined")
            started = time.monotonic()
            text = "x" * (CHAT_MAX - 1)
            for i in range(1000):
                await sender.send({"type": "chat", "text": f"{i:03d}{text}"[:CHAT_MAX]})
            flood = time.monotonic() - started
            # A marker on the "other" bucket: the reader gets it after every relayed line.
            await sender.send({"type": "media", "audio": False, "video": False})
            await reader.next("participant-updated", timeout=30)
            marker = next(
                i for i, m in enumerate(reader.received) if m["type"] == "participant-updated"
            )
            relayed = [m for m in reader.received[:marker] if m["type"] == "chat"]
            assert 1 <= len(relayed) <= CHAT_BURST + int(flood) + 2, (len(relayed), flood)
            told = await sender.wait(
                lambda c: [m for m in c.of("error") if m["reason"] == "rate-limited"]
            )
            assert told[0]["what"] == "chat" and told[0]["retryAfter"] > 0
            # Told, not echoed: about one notice a second, not one per dropped line.
            assert len(told) <= int(time.monotonic() - started) + 2
        finally:
            await close_all([sender, reader])

    asyncio.run(scenario())


def test_a_chat_message_longer_than_the_limit_is_refused(user: DavUser) -> None:
    link, _ = book(user, "chat-long.ics", extra=NO_LOBBY)

    async def scenario() -> None:
        sender = await Client.open(link, "127.0.0.33")
        reader = await Client.open(link, "127.0.0.34")
        try:
            assert (await sender.join(name="Writer"))["type"] == "joined"
            assert (await reader.join(name="Reader"))["type"] == "joined"
            await sender.next("participant-joined")
            await sender.send({"type": "chat", "text": "y" * (CHAT_MAX + 1)})
            error = await sender.next("error")
            assert error == {"type": "error", "reason": "chat-too-long", "max": CHAT_MAX}
            await sender.send({"type": "chat", "text": "z" * CHAT_MAX})
            line = await reader.next("chat")
            assert line["text"] == "z" * CHAT_MAX  # the longest allowed goes through whole
            assert len(reader.of("chat")) == 1
        finally:
            await close_all([sender, reader])

    asyncio.run(scenario())


def test_a_socket_that_never_joins_is_closed(user: DavUser) -> None:
    link, _ = book(user, "idle.ics", starts_in=dt.timedelta(hours=3))

    async def scenario() -> None:
        idle = await Client.open(link, "127.0.0.41")
        asking = await Client.open(link, "127.0.0.41")
        try:
            await idle.send({"type": "ping"})  # talking is not joining
            assert (await asking.join(name="Early"))["type"] == "waiting"
            assert await idle.closed(timeout=JOIN_TIMEOUT + 20) == 1008
            assert not asking.ws.closed  # the one that asked is still there
            assert (await asking.join(name="Early"))["type"] == "waiting"
        finally:
            await close_all([idle, asking])

    asyncio.run(scenario())


def test_one_address_opens_at_most_the_cap_of_sockets(user: DavUser) -> None:
    link, _ = book(user, "cap.ics", starts_in=dt.timedelta(hours=3))

    async def scenario() -> None:
        clients: list[Client] = []
        try:
            for _ in range(SOCKET_CAP):
                c = await Client.open(link, "127.0.0.51")
                clients.append(c)
                assert (await c.join(name="Many"))["type"] == "waiting"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                clients.append(await Client.open(link, "127.0.0.51"))
            assert refused.value.status == 429
            # Another address is not concerned.
            other = await Client.open(link, "127.0.0.52")
            clients.append(other)
            assert (await other.join(name="Other"))["type"] == "waiting"
            # One closes: its place is free again.
            await clients[0].close()
            deadline = time.monotonic() + 20
            while True:
                try:
                    clients.append(await Client.open(link, "127.0.0.51"))
                    break
                except aiohttp.WSServerHandshakeError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
        finally:
            await close_all(clients)

    asyncio.run(scenario())


def test_behind_a_trusted_proxy_the_forwarded_address_counts(user: DavUser) -> None:
    link, _ = book(user, "proxy.ics", starts_in=dt.timedelta(hours=3))

    def via(address: str) -> dict[str, str]:
        return {"X-Forwarded-For": f"192.0.2.200, {address}"}  # the proxy appended the last

    async def opened(source: str, headers: dict[str, str]) -> Client | None:
        try:
            return await Client.open(link, source, headers)
        except aiohttp.WSServerHandshakeError as e:
            assert e.status == 429
            return None

    async def scenario() -> None:
        clients: list[Client] = []
        try:
            # 127.0.0.1 is a trusted proxy (the default): each forwarded client has its cap.
            for _ in range(SOCKET_CAP):
                c = await opened("127.0.0.1", via("198.51.100.7"))
                assert c is not None
                clients.append(c)
            assert await opened("127.0.0.1", via("198.51.100.7")) is None
            other = await opened("127.0.0.1", via("198.51.100.8"))
            assert other is not None
            clients.append(other)
            # Anyone else's X-Forwarded-For is not believed: their own address counts.
            for i in range(SOCKET_CAP):
                c = await opened("127.0.0.55", via(f"198.51.100.{20 + i}"))
                assert c is not None
                clients.append(c)
            assert await opened("127.0.0.55", via("198.51.100.99")) is None
        finally:
            await close_all(clients)

    asyncio.run(scenario())
