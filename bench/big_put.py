"""A PUT with 5,000 attendees must not hold other people's requests for over a second.

While one user PUTs a Visio event with 5,000 attendees, another user's GETs run in a
loop; prints the PUT time and the longest GET wait, for our stack and for stock
Radicale (same body, same run), and the ratio. Target: longest wait <= 1 s.

    .venv/bin/python bench/big_put.py [--attendees 5000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.caldav_put import PASSWORD, make_calendar, start_stock  # noqa: E402
from tests.support.ics import event  # noqa: E402
from tests.support.stack import Stack  # noqa: E402


def body(n: int) -> str:
    people = "\n".join(
        f"ATTENDEE;CN=Invité {i};PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:p{i}@example.net"
        for i in range(n)
    )
    return event(uid=str(uuid.uuid4()), extra="ORGANIZER:mailto:bench@example.org\n" + people)


def measure(base: str, n: int) -> tuple[float, float]:
    """(PUT seconds, longest GET wait in seconds) for one big PUT."""
    put_cal = make_calendar(base, "bench", f"big{uuid.uuid4().hex[:6]}")
    other = f"{base}other/cal/small.ics"
    waits: list[float] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            t0 = time.perf_counter()
            r = requests.get(other, auth=("other", PASSWORD), timeout=30)
            waits.append(time.perf_counter() - t0)
            assert r.status_code == 200

    thread = threading.Thread(target=reader)
    thread.start()
    t0 = time.perf_counter()
    r = requests.put(
        f"{put_cal}big.ics",
        data=body(n).encode(),
        auth=("bench", PASSWORD),
        headers={"Content-Type": "text/calendar"},
        timeout=120,
    )
    elapsed = time.perf_counter() - t0
    done.set()
    thread.join()
    assert r.status_code == 201, r.text
    return elapsed, max(waits)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--attendees", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "stock").mkdir()
        stock, stock_url = start_stock(tmp / "stock")
        (tmp / "stock" / "users").write_text(f"bench:{PASSWORD}\nother:{PASSWORD}\n")
        ours = Stack(tmp / "ours").start()
        try:
            ours.add_user("bench", PASSWORD, email="bench@example.org")
            ours.add_user("other", PASSWORD, email="other@example.org")
            results: dict[str, list[tuple[float, float]]] = {"stock": [], "ours": []}
            for name, base in (("stock", stock_url), ("ours", ours.caldav_url)):
                make_calendar(base, "other", "cal").rstrip("/")
                requests.put(
                    f"{base}other/cal/small.ics",
                    data=event().encode(),
                    auth=("other", PASSWORD),
                    timeout=30,
                )
                for _ in range(args.rounds):
                    results[name].append(measure(base, args.attendees))
        finally:
            ours.stop()
            stock.terminate()
            stock.wait()
    print(f"PUT of a Visio event with {args.attendees} attendees, {args.rounds} rounds:")
    worst = {}
    for name, rows in results.items():
        worst[name] = max(w for _, w in rows)
        puts = ", ".join(f"{p:.2f}" for p, _ in rows)
        print(f"  {name:5}: PUT {puts} s   longest wait of another user's GET {worst[name]:.2f} s")
    print(
        f"ratio of longest waits ours/stock: {worst['ours'] / worst['stock']:.2f}   "
        f"(target: ours <= 1 s)"
    )


if __name__ == "__main__":
    main()
