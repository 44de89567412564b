"""Invitations: PUT latency with 200 attendees against none, and fan-out time to SMTP.

Prints, in one run:
- median PUT time of a Visio event with 200 attendees and with none, through our
  stack and through stock Radicale (same bodies), and both ratios; the figure
  that counts is ours divided by stock's (stock pays for parsing the bigger body
  too): target <= 1.5;
- the time from the PUT's answer until all 200 messages (+ the organizer's copy)
  have reached a local SMTP server (aiosmtpd): target <= 10 s.

    .venv/bin/python bench/invitations.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import requests
from aiosmtpd.controller import Controller

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.caldav_put import PASSWORD, make_calendar, start_stock  # noqa: E402
from tests.support.ics import event  # noqa: E402
from tests.support.stack import Stack, free_port, wait_for  # noqa: E402

ATTENDEES = 200


class Sink:
    def __init__(self) -> None:
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += len(envelope.rcpt_tos)
        return "250 OK"


def body(n: int, organizer: str) -> str:
    people = "\n".join(
        f"ATTENDEE;CN=Invité {i};ROLE=REQ-PARTICIPANT:mailto:p{i}-{uuid.uuid4().hex[:6]}@ex.net"
        for i in range(n)
    )
    extra = f"ORGANIZER;CN=Bench:mailto:{organizer}" + (f"\n{people}" if n else "")
    return event(uid=str(uuid.uuid4()), extra=extra)


def put(url: str, text: str) -> float:
    t0 = time.perf_counter()
    r = requests.put(
        url,
        data=text.encode(),
        auth=("bench", PASSWORD),
        timeout=60,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    elapsed = time.perf_counter() - t0
    assert r.status_code == 201, (r.status_code, r.text)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument(
        "--where",
        default="disk",
        help="disk: data dirs under the temp dir (fsync and WAL checkpoints count); "
        "tmpfs: under /dev/shm (CPU cost shows)",
    )
    args = parser.parse_args()
    base_dir = "/dev/shm" if args.where == "tmpfs" and Path("/dev/shm").is_dir() else None
    print(f"data on {args.where}, fsync on for both")
    sink = Sink()
    smtp = Controller(sink, hostname="127.0.0.1", port=free_port())
    smtp.start()
    with tempfile.TemporaryDirectory(dir=base_dir) as d:
        tmp = Path(d)
        (tmp / "stock").mkdir()
        stock, stock_url = start_stock(tmp / "stock")
        ours = Stack(tmp / "ours", extra_env={"VISIO_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}"})
        ours.start()
        try:
            ours.add_user("bench", PASSWORD, email="bench@example.org")
            times: dict[tuple[str, int], list[float]] = {}
            fanout: list[float] = []
            for base in (stock_url, ours.caldav_url):
                cal = make_calendar(base, "bench", "bench")
                for _ in range(args.rounds):
                    for n in (0, ATTENDEES):
                        before = sink.count
                        text = body(n, "bench@example.org")
                        key = ("stock" if base == stock_url else "ours", n)
                        times.setdefault(key, []).append(put(f"{cal}{uuid.uuid4().hex}.ics", text))
                        if key == ("ours", ATTENDEES):
                            t0 = time.perf_counter()
                            wait_for(
                                lambda b=before: sink.count >= b + ATTENDEES + 1,
                                timeout=120,
                                interval=0.01,
                                what="fan-out",
                            )
                            fanout.append(time.perf_counter() - t0)
        finally:
            ours.stop()
            stock.terminate()
            stock.wait()
            smtp.stop()
    med = {k: statistics.median(v) * 1000 for k, v in times.items()}
    print(f"PUT of a Visio event, median of {args.rounds} (ms):")
    for who in ("stock", "ours"):
        print(
            f"  {who:5}: no attendees {med[(who, 0)]:7.1f}   {ATTENDEES} attendees "
            f"{med[(who, ATTENDEES)]:7.1f}   ratio {med[(who, ATTENDEES)] / med[(who, 0)]:.2f}"
        )
    ours_ratio = med[("ours", ATTENDEES)] / med[("ours", 0)]
    stock_ratio = med[("stock", ATTENDEES)] / med[("stock", 0)]
    print(f"our ratio / stock ratio: {ours_ratio / stock_ratio:.2f}   (target <= 1.5)")
    print(
        f"fan-out: {ATTENDEES} attendees + organizer reached SMTP in median "
        f"{statistics.median(fanout):.2f} s, max {max(fanout):.2f} s   (target <= 10 s)"
    )


if __name__ == "__main__":
    main()
