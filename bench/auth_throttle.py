"""Password throttle: a legitimate sign-in's time, and an attacker's guessing rate, with and
without the throttle, in the same run (issue 17, finding 4).

Two real stacks side by side: one with the default throttle (VISIO_LOGIN_MAX_FAILURES 10,
VISIO_ADDRESS_MAX_FAILURES 50, 15 min window and lockout, 4 checks at once), one with the
throttle out of the way (limits and slots far above anything the run reaches). Both keep
radicale.conf's `[auth] delay` (1 s, jittered 0.5x-1.5x outside pytest).

Legitimate user: the right password on a calendar app's PROPFIND, the portal's sign-in form
and the room's socket, each the first time (an Argon2 check) and again (the login cache);
a static file of the same backend is the reference.

Attacker, from one address, for ATTACK_SECONDS each:
  - one socket looping wrong passwords on one login (the review's attack);
  - SPRAY_SOCKETS sockets in parallel, each password on a fresh login (spraying).
Answers per minute are what the attacker sees; "checked" counts the passwords the server
really tested (its log), the only guesses that can succeed. Before this change the room's
socket tested each password in process with no delay: that rate is measured here too.

    .venv/bin/python bench/auth_throttle.py [--users 6] [--attack-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import PASSWORD, new_user  # noqa: E402
from tests.room.signal import Client, book  # noqa: E402
from tests.support.stack import Stack  # noqa: E402
from visio_core.accounts import Accounts  # noqa: E402
from visio_core.db import Database  # noqa: E402

OFF = {
    "VISIO_LOGIN_MAX_FAILURES": "1000000",
    "VISIO_ADDRESS_MAX_FAILURES": "1000000",
    "VISIO_PASSWORD_CHECKS_AT_ONCE": "1000",
}
SPRAY_SOCKETS = 8


def http(source: str) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(local_addr=(source, 0)),
        cookie_jar=aiohttp.CookieJar(unsafe=True),
        timeout=aiohttp.ClientTimeout(total=120),
    )


async def propfind(stack: Stack, login: str, password: str, source: str) -> int:
    basic = base64.b64encode(f"{login}:{password}".encode()).decode()
    headers = {"Depth": "0", "Authorization": f"Basic {basic}"}
    async with (
        http(source) as web,
        web.request("PROPFIND", f"{stack.caldav_url}{login}/", headers=headers) as r,
    ):
        await r.read()
        return r.status


async def portal(stack: Stack, login: str, password: str, source: str) -> int:
    async with http(source) as web:
        async with web.get(stack.web_url + "login") as r:
            found = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert found is not None
        form = {"csrf": found.group(1), "login": login, "password": password, "tz": "UTC"}
        async with web.post(stack.web_url + "login", data=form, allow_redirects=False) as r:
            await r.read()
            return r.status


async def static_page(stack: Stack, source: str) -> int:
    async with http(source) as web, web.get(stack.web_url + "static/portal.css") as r:
        await r.read()
        return r.status


async def room(link: str, login: str, password: str, source: str) -> str:
    c = await Client.open(link, source)
    try:
        return str((await c.join(login=login, password=password))["type"])
    finally:
        await c.close()


async def timed(call: Callable[..., Awaitable[object]], expected: object, *args: object) -> float:
    started = time.perf_counter()
    got = await call(*args)
    assert got == expected, got
    return (time.perf_counter() - started) * 1000


@dataclass
class Attack:
    answers: int = 0
    last_tested: float = 0.0  # seconds into the run
    tested_times: list[float] = field(default_factory=list)  # answer times, password tested
    untested_times: list[float] = field(default_factory=list)  # … refused untested (locked)


class Side:
    """One stack, its accounts and its meeting."""

    def __init__(self, name: str, env: dict[str, str], users: int) -> None:
        self.name = name
        self.stack = Stack(Path(tempfile.mkdtemp(prefix=f"auth-{name}-")), extra_env=env).start()
        organizer = new_user(self.stack)
        self.link, _ = book(organizer, "bench.ics")
        accounts = Accounts(Database(self.stack.data_dir / "visio.sqlite3"))
        self.logins = {kind: [] for kind in ("caldav", "portal", "room")}
        for kind, logins in self.logins.items():
            for _ in range(users):
                login = f"{kind}{uuid.uuid4().hex[:8]}"
                accounts.add(login, f"{login}@example.org", login.title(), PASSWORD)
                logins.append(login)
        self.victim = self.logins["caldav"][0]

    async def legitimate(self) -> dict[str, float]:
        """Median milliseconds of each sign-in, first (Argon2) and again (cached)."""
        s, link, src = self.stack, self.link, "127.0.0.10"
        times: dict[str, list[float]] = {}

        def add(what: str, ms: float) -> None:
            times.setdefault(what, []).append(ms)

        for _ in range(len(self.logins["caldav"])):
            add("static page (reference)", await timed(static_page, 200, s, src))
        for kind, check, ok, target, logins in (
            ("CalDAV PROPFIND", propfind, 207, s, self.logins["caldav"]),
            ("portal sign-in", portal, 303, s, self.logins["portal"]),
            ("room sign-in", room, "lobby", link, self.logins["room"]),
        ):
            for login in logins:
                add(f"{kind}, first", await timed(check, ok, target, login, PASSWORD, src))
                add(f"{kind}, again", await timed(check, ok, target, login, PASSWORD, src))
        return {what: statistics.median(ms) for what, ms in times.items()}

    def checked(self, source: str) -> tuple[int, int]:
        """(passwords tested, attempts refused untested) from `source`, from the server log."""
        lines = [ln for ln in self.stack.log_text().splitlines() if f"from {source} (" in ln]
        return (
            sum("password refused for" in ln for ln in lines),
            sum("not checked" in ln for ln in lines),
        )

    async def one_login(self, seconds: float, source: str) -> Attack:
        """The review's attack: one socket, wrong passwords on one login."""
        c = await Client.open(self.link, source)
        attack = Attack()
        started = time.monotonic()
        try:
            while time.monotonic() - started < seconds:
                before = self.checked(source)[0]
                asked = time.monotonic()
                answer = await c.join(login=self.victim, password=f"guess{attack.answers}")
                took = time.monotonic() - asked
                assert answer == {"type": "error", "reason": "bad-credentials"}, answer
                attack.answers += 1
                if self.checked(source)[0] > before:
                    attack.tested_times.append(took)
                    attack.last_tested = time.monotonic() - started
                else:
                    attack.untested_times.append(took)
        finally:
            await c.close()
        return attack

    async def spray(self, seconds: float, source: str) -> tuple[int, int]:
        """SPRAY_SOCKETS sockets from one address, a fresh login per password:
        (answers, passwords tested)."""
        answers = 0
        deadline = time.monotonic() + seconds

        async def one() -> None:
            nonlocal answers
            c = await Client.open(self.link, source)
            try:
                while time.monotonic() < deadline:
                    ghost = f"ghost{uuid.uuid4().hex[:8]}"
                    answer = await c.join(login=ghost, password="Summer2025!")
                    assert answer["type"] == "error", answer
                    answers += 1
            finally:
                await c.close()

        await asyncio.gather(*(one() for _ in range(SPRAY_SOCKETS)))
        return answers, self.checked(source)[0]

    def stop(self) -> None:
        self.stack.stop()


def in_process_rate(stack: Stack, seconds: float) -> float:
    """Wrong passwords per minute as the room's socket tested them before this change:
    Accounts.verify (Argon2) in the backend's process, no delay, no limit."""
    accounts = Accounts(Database(stack.data_dir / "visio.sqlite3"))
    login = accounts.list()[0].login
    n, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        assert accounts.verify(login, f"guess{n}") is None
        n += 1
    return n / (time.monotonic() - started) * 60


def per_minute(count: float, seconds: float) -> float:
    return count / seconds * 60


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=6, help="accounts per kind of sign-in")
    parser.add_argument("--attack-seconds", type=float, default=20.0)
    args = parser.parse_args()
    seconds = args.attack_seconds

    on = Side("on", {}, args.users)
    off = Side("off", OFF, args.users)
    try:
        print("Legitimate sign-in, right password (median ms)")
        legit_on = asyncio.run(on.legitimate())
        legit_off = asyncio.run(off.legitimate())
        print(f"  {'':34} {'throttle on':>12} {'throttle off':>13} {'ratio':>6}")
        for what in legit_on:
            a, b = legit_on[what], legit_off[what]
            print(f"  {what:34} {a:12.1f} {b:13.1f} {a / b:6.2f}")

        print(f"\nAttacker, one address, one socket, {seconds:.0f} s of wrong passwords, one login")
        before = in_process_rate(on.stack, min(seconds, 5.0))
        print(f"  before this change (in-process Argon2, no delay): {before:7.1f} tested/min")
        for side, source in ((off, "127.0.0.66"), (on, "127.0.0.67")):
            attack = asyncio.run(side.one_login(seconds, source))
            tested = len(attack.tested_times)
            print(
                f"  throttle {side.name:3}: {per_minute(attack.answers, seconds):5.1f} answers/min,"
                f" {tested} tested ({per_minute(tested, seconds):5.1f}/min over the run),"
                f" the last one {attack.last_tested:4.1f} s in"
            )
            if attack.tested_times and attack.untested_times:
                a = statistics.mean(attack.tested_times) * 1000
                b = statistics.mean(attack.untested_times) * 1000
                print(f"    mean answer: {a:.0f} ms while tested, {b:.0f} ms once locked")
        allowed = 10 / 15
        print(
            f"  allowed afterwards by the settings: 10 per 15 min = {allowed:.2f} tested/min"
            f" per login: {before / allowed:,.0f}x fewer than before this change"
        )

        spray_seconds = 2 * seconds  # long enough to reach the address's limit
        print(
            f"\nAttacker spraying from one address, {SPRAY_SOCKETS} sockets, a fresh login per"
            f" password, {spray_seconds:.0f} s"
        )
        for side, source in ((off, "127.0.0.68"), (on, "127.0.0.69")):
            answers, tested = asyncio.run(side.spray(spray_seconds, source))
            print(
                f"  throttle {side.name:3}: {per_minute(answers, spray_seconds):5.1f} answers/min,"
                f" {tested} tested ({per_minute(tested, spray_seconds):5.1f}/min over the run)"
            )
        print("  allowed afterwards by the settings: 50 per 15 min per address = 3.33 tested/min")
    finally:
        on.stop()
        off.stop()


if __name__ == "__main__":
    main()
