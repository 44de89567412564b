"""PUT cost of a new Visio event: our stack against stock Radicale, same run.

Both servers run on this machine with the same Radicale version and the same
fsync setting; stock Radicale checks a plain htpasswd file, ours the Argon2
accounts store (cached after the first login). Prints the time per PUT of each
and the ratio ours/stock (target: <= 1.3).

    .venv/bin/python bench/caldav_put.py [--puts 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.ics import event  # noqa: E402
from tests.support.stack import Stack, free_port, wait_for  # noqa: E402

PASSWORD = "bench password"


def start_stock(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (tmp / "users").write_text(f"bench:{PASSWORD}\n")
    (tmp / "config").write_text(
        f"""[server]
hosts = 127.0.0.1:{port}
[auth]
type = htpasswd
htpasswd_filename = {tmp / "users"}
htpasswd_encryption = plain
[rights]
type = owner_only
[storage]
filesystem_folder = {tmp / "collections"}
[logging]
level = warning
"""
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "radicale", "--config", str(tmp / "config")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/"
    wait_for(lambda: requests.request("OPTIONS", url, timeout=1).status_code < 500, what="stock")
    return proc, url


def run_puts(calendar_url: str, user: str, count: int) -> list[float]:
    session = requests.Session()
    session.auth = (user, PASSWORD)
    bodies = [event(uid=str(uuid.uuid4()), summary=f"Réunion {i}") for i in range(count)]
    times = []
    for i, body in enumerate(bodies):
        t0 = time.perf_counter()
        r = session.put(
            f"{calendar_url}e{i}-{uuid.uuid4().hex[:6]}.ics",
            data=body.encode(),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=30,
        )
        times.append(time.perf_counter() - t0)
        assert r.status_code == 201, (r.status_code, r.text)
    return times


def make_calendar(base: str, user: str, name: str) -> str:
    url = f"{base}{user}/{name}/"
    r = requests.request("MKCALENDAR", url, auth=(user, PASSWORD), timeout=30)
    assert r.status_code == 201, r.text
    return url


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--puts", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per server")
    parser.add_argument(
        "--where",
        default="disk,tmpfs",
        help="data dirs on the disk (fsync costs dominate) and/or on tmpfs (CPU cost shows)",
    )
    args = parser.parse_args()
    for where in args.where.split(","):
        base = "/dev/shm" if where == "tmpfs" and Path("/dev/shm").is_dir() else None
        print(f"== data on {where} ({base or tempfile.gettempdir()}), fsync on for both ==")
        measure(args, base)


def measure(args: argparse.Namespace, base: str | None) -> None:
    with tempfile.TemporaryDirectory(dir=base) as d:
        tmp = Path(d)
        (tmp / "stock").mkdir()
        stock, stock_url = start_stock(tmp / "stock")
        ours = Stack(tmp / "ours").start()
        try:
            ours.add_user("bench", PASSWORD)
            results: dict[str, list[float]] = {"stock": [], "ours": []}
            per = max(1, args.puts // args.rounds)
            for rnd in range(args.rounds):  # alternate so machine noise hits both alike
                cal = make_calendar(stock_url, "bench", f"r{rnd}")
                results["stock"] += run_puts(cal, "bench", per)
                cal = make_calendar(ours.caldav_url, "bench", f"r{rnd}")
                results["ours"] += run_puts(cal, "bench", per)
        finally:
            ours.stop()
            stock.terminate()
            stock.wait()
    med = {k: statistics.median(v) * 1000 for k, v in results.items()}
    mean = {k: statistics.fmean(v) * 1000 for k, v in results.items()}
    print(f"PUTs per server: {len(results['ours'])} new Visio events, sequential")
    for k in ("stock", "ours"):
        print(f"  {k:5}: median {med[k]:6.2f} ms/PUT   mean {mean[k]:6.2f} ms/PUT")
    print(
        f"ratio ours/stock: median {med['ours'] / med['stock']:.2f}  "
        f"mean {mean['ours'] / mean['stock']:.2f}   (target <= 1.3)"
    )


if __name__ == "__main__":
    main()
