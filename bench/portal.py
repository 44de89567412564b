"""Booking portal: month view of a busy user and the plan form round trip, against a static page.

A user with 500 events in one month (50 weekly series and 450 single meetings,
half of them Visio) on the real stack. The month view reads the agenda index
that the storage plugin keeps with every write (visio_core/agenda.py): nothing
is cached between views, so every view is current, the one right after a save
included. For comparison the same month is also read the way a calendar not yet
indexed is (CalDAV REPORT + multiget + expansion, in process). The baseline is
a static file served by the same aiohttp app in the same run. Prints medians
and the ratio (target: month view <= 5x the static page).

    .venv/bin/python bench/portal.py [--requests 30]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import statistics
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from zoneinfo import ZoneInfo

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ics import event  # noqa: E402
from tests.support.stack import Stack  # noqa: E402

PASSWORD = "bench password"
SERIES = 50
SINGLES = 450


def median_ms(fn, n: int) -> float:
    fn()  # warm
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def fill(stack: Stack, month: dt.date) -> None:
    s = requests.Session()
    s.auth = ("bench", PASSWORD)
    cal = f"{stack.caldav_url}bench/calendar/"
    assert s.request("MKCALENDAR", cal, timeout=30).status_code == 201
    bodies = []
    for i in range(SERIES):
        day = month + dt.timedelta(days=i % 7)
        stamp = day.strftime("%Y%m%d")
        hour = 8 + i % 10
        bodies.append(
            event(
                summary=f"Série {i}",
                start=f"{stamp}T{hour:02d}0000",
                end=f"{stamp}T{hour:02d}3000",
                categories="Visio" if i % 2 else None,
                extra="RRULE:FREQ=WEEKLY;COUNT=20",
            )
        )
    for i in range(SINGLES):
        day = month + dt.timedelta(days=i % 28)
        stamp = day.strftime("%Y%m%d")
        hour = 8 + i % 11
        bodies.append(
            event(
                summary=f"Réunion {i}",
                start=f"{stamp}T{hour:02d}1500",
                end=f"{stamp}T{hour:02d}4500",
                categories="Visio" if i % 2 else None,
            )
        )

    def put(body: str) -> None:
        r = s.put(
            f"{cal}{uuid.uuid4().hex}.ics",
            data=body.encode(),
            timeout=60,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert r.status_code in (201, 204), r.text

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(put, bodies))


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


def sign_in(stack: Stack) -> tuple[requests.Session, str]:
    w = requests.Session()
    page = w.get(stack.web_url + "login", timeout=30).text
    csrf = csrf_of(page)
    r = w.post(
        stack.web_url + "login",
        timeout=30,
        data={"csrf": csrf, "login": "bench", "password": PASSWORD, "tz": "Europe/Paris"},
    )
    assert r.ok and r.url.rstrip("/") == stack.web_url.rstrip("/"), r.status_code
    page = w.get(stack.web_url + "plan", timeout=30).text
    return w, csrf_of(page)


async def caldav_path(stack: Stack, month: dt.date, n: int) -> float:
    """The month's data as the portal reads a calendar the agenda does not hold."""
    import aiohttp

    from conference_backend.portal import occurrences
    from conference_backend.portal.caldav_client import CalDav
    from visio_core.accounts import Account
    from visio_core.agenda import Agenda
    from visio_core.db import Database
    from visio_core.tokens import load_or_create_key

    class NotIndexed(Agenda):
        def between(self, *args: object) -> None:  # type: ignore[override]
            return None

    key = load_or_create_key(stack.data_dir / "secret.key")
    tz = ZoneInfo("Europe/Paris")
    first = month - dt.timedelta(days=month.weekday())
    start = dt.datetime.combine(first, dt.time(), tz)
    end = start + dt.timedelta(days=42)
    me = Account("bench", "bench@example.org", "Bench", "", "local", False)
    times: list[float] = []
    db = Database(stack.data_dir / "visio.sqlite3")
    async with aiohttp.ClientSession() as http:
        caldav = CalDav(http, stack.caldav_url, key)
        await caldav.calendar("bench")
        for _ in range(n):
            t0 = time.perf_counter()
            await occurrences.between(
                caldav, NotIndexed(db), me, start, end, tz, occurrences.Cache()
            )
            times.append(time.perf_counter() - t0)
    db.close()
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30)
    n = parser.parse_args().requests
    today = dt.date.today()
    month = (today.replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp)).start()
        try:
            stack.add_user("bench", PASSWORD)
            t0 = time.perf_counter()
            fill(stack, month)
            print(
                f"loaded {SERIES} series + {SINGLES} single events in "
                f"{time.perf_counter() - t0:.1f} s"
            )
            w, csrf = sign_in(stack)
            url = f"{stack.web_url}calendar?view=month&date={month.isoformat()}"
            shown = w.get(url, timeout=60).text.count('class="event')
            static = median_ms(lambda: w.get(stack.web_url + "static/portal.css", timeout=30), n)
            monthly = median_ms(lambda: w.get(url, timeout=60), n)
            form = {
                "csrf": csrf,
                "subject": "Bench",
                "date": month.isoformat(),
                "start": "07:00",
                "duration": "30",
                "kind": "visio",
                "invitees": "someone@example.net",
                "confirm": "1",
            }

            def plan() -> None:
                r = w.post(stack.web_url + "plan", data=form, timeout=60)  # PUT + redirect + GET
                assert r.ok and "/meeting?" in r.url, r.status_code

            round_trip = median_ms(plan, max(5, n // 3))

            # Right after the portal's own write: nothing to refresh, the index is current.
            later = iter(range(1, 28))

            def changed_then_month() -> float:
                subject = f"Bench {uuid.uuid4().hex[:8]}"
                day = month + dt.timedelta(days=next(later))
                posted = {**form, "subject": subject, "date": day.isoformat(), "start": "06:00"}
                r = w.post(stack.web_url + "plan", data=posted, timeout=60)
                assert r.ok and "/meeting?" in r.url, r.status_code
                t0 = time.perf_counter()
                page = w.get(url, timeout=60).text
                elapsed = time.perf_counter() - t0
                assert subject in page, "the new meeting is not on the month view"
                return elapsed

            after_change = statistics.median(changed_then_month() for _ in range(max(5, n // 3)))
            after_change *= 1000
            through_caldav = asyncio.run(caldav_path(stack, month, max(5, n // 3)))
        finally:
            stack.stop()
    print(f"static page (same app)        median {static:7.1f} ms")
    print(
        f"month view, 500 events        median {monthly:7.1f} ms  ({shown} entries shown; "
        f"ratio {monthly / static:.1f}x, target <= 5x)"
    )
    print(
        f"month view right after a save median {after_change:7.1f} ms  "
        f"(ratio {after_change / static:.1f}x; the new meeting is on it)"
    )
    print(
        f"same data through CalDAV      median {through_caldav:7.1f} ms  "
        f"(in process, a calendar not indexed yet: REPORT + multiget + expansion; "
        f"{through_caldav / monthly:.0f}x the indexed view)"
    )
    print(
        f"plan form round trip          median {round_trip:7.1f} ms  "
        "(POST, CalDAV PUT with room + invitation, meeting page)"
    )


if __name__ == "__main__":
    main()
