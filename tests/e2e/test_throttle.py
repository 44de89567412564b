"""Issue 17, finding 4: every password check goes through one throttle, against the real stack.

The attacks of the review: wrong passwords looped on one room socket, then the
same login tried from the portal's sign-in and from a calendar app (direct
CalDAV). Each client comes from a loopback address of its own (127.0.0.x), so
the throttle sees distinct people. The stack runs with small limits (a login
locks after LOGIN_LIMIT refusals, an address after ADDRESS_LIMIT) and one
password check at a time with no wait, so the bound on checks at once shows.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
import uuid
from collections.abc import Iterator

import aiohttp
import pytest

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.room.signal import Client, book
from tests.support.stack import Stack, wait_for

LOGIN_LIMIT = 4
ADDRESS_LIMIT = 12
DELAY = 1.0  # radicale.conf's [auth] delay: Radicale waits it (0.5x-1.5x) after a refusal
WRONG = {"type": "error", "reason": "bad-credentials"}
TIMEOUT = aiohttp.ClientTimeout(total=60)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "VISIO_LOGIN_MAX_FAILURES": str(LOGIN_LIMIT),
        "VISIO_ADDRESS_MAX_FAILURES": str(ADDRESS_LIMIT),
        "VISIO_PASSWORD_CHECKS_AT_ONCE": "1",
        "VISIO_PASSWORD_CHECK_WAIT": "0",
    }
    s = Stack(tmp_path_factory.mktemp("throttle"), extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


def masked(login: str) -> str:
    return f"{login[0]}…{login[-1]}"


def http(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),  # cookies for 127.0.0.1 too
        timeout=TIMEOUT,
    )


async def portal(stack: Stack, login: str, password: str, source: str) -> tuple[int, str]:
    """Sign in on the portal's form from `source`: (status, page); 303 is signed in."""
    async with http(source) as web:
        async with web.get(stack.web_url + "login") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        form = {"csrf": csrf.group(1), "login": login, "password": password, "tz": "UTC"}
        async with web.post(stack.web_url + "login", data=form, allow_redirects=False) as r:
            return r.status, await r.text()


async def propfind(
    stack: Stack, login: str, password: str, source: str
) -> tuple[int, dict[str, str], str]:
    """A calendar app's request from `source`: (status, headers, body)."""
    basic = base64.b64encode(f"{login}:{password}".encode()).decode()
    headers = {"Depth": "0", "Authorization": f"Basic {basic}"}
    async with (
        http(source) as web,
        web.request("PROPFIND", f"{stack.caldav_url}{login}/", headers=headers) as r,
    ):
        return r.status, dict(r.headers), await r.text()


async def room(link: str, login: str, password: str, source: str) -> dict[str, object]:
    """Sign in on the room's socket from `source`: the server's answer to `join`."""
    c = await Client.open(link, source)
    try:
        return await c.join(login=login, password=password)
    finally:
        await c.close()


def logged(stack: Stack, *parts: str) -> str:
    """The first server log line holding every part (waited for)."""

    def find() -> str:
        return next(
            (line for line in stack.log_text().splitlines() if all(p in line for p in parts)), ""
        )

    return str(wait_for(find, timeout=30, what=f"a log line with {parts}"))


def test_guessing_on_the_room_socket_locks_the_login_everywhere(
    stack: Stack, user: DavUser
) -> None:
    link, _ = book(user, "guessed.ics")
    victim, attacker = user.login, "127.0.0.31"
    bystander = new_user(stack)

    async def scenario() -> None:
        c = await Client.open(link, attacker)
        try:
            for i in range(LOGIN_LIMIT):
                started = time.monotonic()
                answer = await c.join(login=victim, password=f"guess {i}")
                assert answer == WRONG
                # Waited on like any refusal (Radicale's [auth] delay), not ~100 ms.
                assert time.monotonic() - started >= DELAY / 2
            # The login is locked: the right password gets the very same answer, as slowly.
            started = time.monotonic()
            assert await c.join(login=victim, password=PASSWORD) == WRONG
            assert time.monotonic() - started >= DELAY / 2
        finally:
            await c.close()

        # The same lock from the portal and from a calendar app, from other addresses.
        status, page = await portal(stack, victim, PASSWORD, "127.0.0.32")
        assert status == 401 and "Identifiant ou mot de passe incorrect" in page
        assert (await propfind(stack, victim, PASSWORD, "127.0.0.33"))[0] == 401
        assert await room(link, victim, PASSWORD, "127.0.0.34") == WRONG

        # Someone else, even from the attacker's address, is not held back.
        assert (await portal(stack, bystander.login, PASSWORD, attacker))[0] == 303
        assert (await room(link, bystander.login, PASSWORD, attacker))["type"] == "lobby"
        assert (await propfind(stack, bystander.login, PASSWORD, attacker))[0] == 207

    asyncio.run(scenario())

    # One line per refusal, with the masked login, the address and the surface.
    who = masked(victim)
    logged(stack, f"password refused for {who} from {attacker} (room): 1 of {LOGIN_LIMIT}")
    logged(stack, f"login {who} locked out", f"the last from {attacker}")
    logged(stack, f"password of {who} from {attacker} (room) not checked: locked out")
    logged(stack, f"password of {who} from 127.0.0.32 (portal) not checked: locked out")
    logged(stack, f"password of {who} from 127.0.0.33 (caldav) not checked: locked out")
    # The login as typed is in no refusal line (Radicale's own is masked too).
    refusals = [
        line
        for line in stack.log_text().splitlines()
        if "Failed login attempt" in line or "password" in line
    ]
    assert refusals and not [line for line in refusals if victim in line]


def test_refusals_on_every_surface_count_together(stack: Stack, user: DavUser) -> None:
    link, _ = book(user, "together.ics")
    login = user.login

    async def scenario() -> None:
        assert (await propfind(stack, login, "wrong 1", "127.0.0.41"))[0] == 401
        started = time.monotonic()
        status, _ = await portal(stack, login, "wrong 2", "127.0.0.42")
        assert status == 401
        assert time.monotonic() - started >= DELAY / 2  # the portal waits as the socket does
        assert await room(link, login, "wrong 3", "127.0.0.43") == WRONG
        # Still open: one more refusal is allowed, and the right password works meanwhile
        # from an address with no refusal of its own.
        assert (await portal(stack, login, PASSWORD, "127.0.0.40"))[0] == 303
        assert (await propfind(stack, login, "wrong 4", "127.0.0.44"))[0] == 401
        # Four refusals over three surfaces: locked on all of them.
        assert (await propfind(stack, login, PASSWORD, "127.0.0.45"))[0] == 401
        assert (await portal(stack, login, PASSWORD, "127.0.0.45"))[0] == 401
        assert await room(link, login, PASSWORD, "127.0.0.45") == WRONG

    asyncio.run(scenario())
    who = masked(login)
    for address, via in (("41", "caldav"), ("42", "portal"), ("43", "room"), ("44", "caldav")):
        logged(stack, f"password refused for {who} from 127.0.0.{address} ({via})")
    logged(stack, f"login {who} locked out", "the last from 127.0.0.44")


def test_an_address_that_guesses_many_logins_is_locked_for_all_of_them(
    stack: Stack, user: DavUser
) -> None:
    link, _ = book(user, "spray.ics")
    sprayer = "127.0.0.51"

    async def scenario() -> None:
        # One wrong password for each of many logins (never enough for a login's lock).
        for i in range(ADDRESS_LIMIT):
            ghost = f"ghost{uuid.uuid4().hex[:8]}"
            if i % 2:
                assert await room(link, ghost, "Summer2025!", sprayer) == WRONG
            else:
                assert (await portal(stack, ghost, "Summer2025!", sprayer))[0] == 401
        # Now even a real account's right password is refused from there, like a wrong one…
        assert await room(link, user.login, PASSWORD, sprayer) == WRONG
        assert (await portal(stack, user.login, PASSWORD, sprayer))[0] == 401
        assert (await propfind(stack, user.login, PASSWORD, sprayer))[0] == 401
        # …and accepted from anywhere else: the login itself was never guessed.
        assert (await portal(stack, user.login, PASSWORD, "127.0.0.52"))[0] == 303

    asyncio.run(scenario())
    logged(stack, f"address {sprayer} locked out", f"after {ADDRESS_LIMIT} refused passwords")


def test_signing_in_forgets_the_refusals_from_that_address_only(
    stack: Stack, user: DavUser
) -> None:
    login = user.login

    async def refused(times: int, source: str) -> None:
        for i in range(times):
            assert (await propfind(stack, login, f"typo {i}", source))[0] == 401

    async def scenario() -> None:
        # A person mistyping, then getting it right, can mistype again later.
        await refused(LOGIN_LIMIT - 1, "127.0.0.61")
        assert (await portal(stack, login, PASSWORD, "127.0.0.61"))[0] == 303
        await refused(LOGIN_LIMIT - 1, "127.0.0.61")
        assert (await propfind(stack, login, PASSWORD, "127.0.0.61"))[0] == 207
        # Their success does not forget what someone else tried from elsewhere.
        await refused(LOGIN_LIMIT - 1, "127.0.0.62")
        assert (await propfind(stack, login, PASSWORD, "127.0.0.61"))[0] == 207
        await refused(1, "127.0.0.62")
        assert (await propfind(stack, login, PASSWORD, "127.0.0.61"))[0] == 401

    asyncio.run(scenario())


def test_password_checks_beyond_the_bound_are_answered_busy(stack: Stack) -> None:
    """One check at a time and no wait (this stack's settings): a burst of sign-ins on
    unknown logins gets "busy, try again" for those that found the slot taken."""

    def someone() -> str:
        return f"nobody{uuid.uuid4().hex[:8]}"

    async def scenario() -> tuple[int, dict[str, str], str]:
        async with asyncio.timeout(120):
            for n in range(1, 250):  # a fresh address per request: no address lock
                answers = await asyncio.gather(
                    *(propfind(stack, someone(), "guess", f"127.0.{n}.{i + 1}") for i in range(8))
                )
                assert {status for status, _, _ in answers} <= {401, 503}
                busy = [a for a in answers if a[0] == 503]
                if busy:
                    return busy[0]
        raise AssertionError("no burst was answered busy")

    _, headers, body = asyncio.run(scenario())
    assert headers["Retry-After"].isdigit() and headers["X-Visio-Refusal"] == "busy"
    assert "try again" in body
    logged(stack, "not checked: all 1 check slots taken (busy)")

    # The portal says so in words; the room's socket with retryAfter.
    async def portal_burst() -> tuple[int, str]:
        async with asyncio.timeout(120):
            for n in range(1, 250):
                answers = await asyncio.gather(
                    *(portal(stack, someone(), "guess", f"127.1.{n}.{i + 1}") for i in range(8))
                )
                assert {status for status, _ in answers} <= {401, 503}
                busy = [a for a in answers if a[0] == 503]
                if busy:
                    return busy[0]
        raise AssertionError("no burst was answered busy")

    _, page = asyncio.run(portal_burst())
    assert "Trop de connexions en ce moment" in page
