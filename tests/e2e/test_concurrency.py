"""Two clients writing at once, and a server killed in the middle of their writes.

Each client is a separate OS process (a `python -c` script) that PUTs its share
of Visio events one after the other and prints one line per answer, so the test
knows exactly which PUTs were answered 201 before the server died.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import PASSWORD
from tests.support import ics
from tests.support.stack import ROOT, Stack, wait_for

PER_CLIENT = 200
CLIENTS = 2

# A client: waits for "go" on stdin, then PUTs `count` Visio events and prints
# "<status> <href>" per answer, or "error <href> <reason>" and stops when the
# server cannot be reached any more.
CLIENT = r"""
import sys, requests
url, login, password, prefix, count = sys.argv[1:6]
session = requests.Session()
session.auth = (login, password)
print("ready", flush=True)
sys.stdin.readline()
for i in range(int(count)):
    href = f"{prefix}-{i:03d}.ics"
    body = "\r\n".join([
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Visio tests//EN",
        "BEGIN:VEVENT", f"UID:{prefix}-{i:03d}", "DTSTAMP:20261130T090000Z",
        f"DTSTART;TZID=Europe/Paris:20261203T{8 + i % 10:02d}0000",
        f"DTEND;TZID=Europe/Paris:20261203T{8 + i % 10:02d}3000",
        f"SUMMARY:Réunion {prefix} n°{i}", "CATEGORIES:Visio",
        "END:VEVENT", "END:VCALENDAR", "",
    ])
    try:
        r = session.put(url + href, data=body.encode(), timeout=60,
                        headers={"Content-Type": "text/calendar; charset=utf-8"})
    except requests.RequestException as e:
        print("error", href, type(e).__name__, flush=True)
        break
    print(r.status_code, href, flush=True)
"""


@dataclass
class Load:
    """Both clients, started together; their answers arrive on one queue."""

    calendar: str
    login: str
    procs: list[subprocess.Popen[str]] = field(default_factory=list)
    readers: list[threading.Thread] = field(default_factory=list)
    answers: queue.Queue[tuple[str, str]] = field(default_factory=queue.Queue)
    seen: list[tuple[str, str]] = field(default_factory=list)

    def start(self) -> Load:
        for n in range(CLIENTS):
            args = [self.calendar, self.login, PASSWORD, f"c{n}", str(PER_CLIENT)]
            proc = subprocess.Popen(
                [sys.executable, "-c", CLIENT, *args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=ROOT,
            )
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            self.procs.append(proc)
        for proc in self.procs:
            reader = threading.Thread(target=self._read, args=(proc,), daemon=True)
            reader.start()
            self.readers.append(reader)
        for proc in self.procs:  # both clients start their writes at the same moment
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return self

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            status, href = line.split()[:2]
            self.answers.put((status, href))

    def created(self) -> list[str]:
        return [href for status, href in self.seen if status == "201"]

    def wait_for_created(self, count: int, timeout: float = 90.0) -> None:
        """Until `count` PUTs were answered 201 (or the clients stopped and all they
        printed was read)."""

        def enough() -> bool:
            while True:
                try:
                    self.seen.append(self.answers.get_nowait())
                except queue.Empty:
                    break
            done = not any(r.is_alive() for r in self.readers) and self.answers.empty()
            return len(self.created()) >= count or done

        wait_for(enough, timeout=timeout, interval=0.01, what=f"{count} PUTs answered 201")

    def finish(self) -> None:
        for proc in self.procs:
            proc.wait(timeout=90)
        self.wait_for_created(CLIENTS * PER_CLIENT)


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(tmp_path / "stack").start()
    try:
        yield stack
    finally:
        stack.stop()


def calendar_of(stack: Stack) -> tuple[str, str]:
    login = "u" + uuid.uuid4().hex[:8]
    stack.add_user(login, PASSWORD)
    url = f"{stack.caldav_url}{login}/calendar/"
    r = requests.request("MKCALENDAR", url, auth=(login, PASSWORD), timeout=30)
    assert r.status_code == 201, r.text
    return login, url


def registry_rows(stack: Stack) -> set[tuple[str, ...]]:
    """Every registry row, all columns but the timestamps."""
    with stack.db() as db, db.reading() as conn:
        rows = conn.execute(
            "SELECT room_id, uid, owner, calendar_path, href, kind, options, token_hash,"
            " room_number, summary, event FROM rooms"
        ).fetchall()
    return {tuple(str(v) for v in row) for row in rows}


def stored_event(login: str, url: str) -> tuple[str, str, str]:
    """(UID, room id, room number) of the event at `url`, which must parse."""
    r = requests.get(url, auth=(login, PASSWORD), timeout=30)
    assert r.status_code == 200, (url, r.status_code)
    (ev,) = ics.vevents(r.text)
    return str(ev["UID"]), str(ev["X-VISIO-ROOM"]), str(ev["X-VISIO-ROOM-NUMBER"])


def assert_registry_is_what_rebuild_makes(stack: Stack) -> set[tuple[str, ...]]:
    before = registry_rows(stack)
    listed = stack.visio("rooms", "list").stdout
    stack.visio("rooms", "rebuild")
    after = registry_rows(stack)
    assert before - after == set(), "rows the calendars do not justify"
    assert after - before == set(), "rooms of stored events missing from the registry"
    assert stack.visio("rooms", "list").stdout == listed
    return after


def test_two_clients_at_once_get_distinct_rooms_and_numbers(own_stack: Stack) -> None:
    login, calendar = calendar_of(own_stack)
    load = Load(calendar, login).start()
    load.finish()

    statuses = [status for status, _ in load.seen]
    assert statuses == ["201"] * (CLIENTS * PER_CLIENT), sorted(set(statuses))
    events = [stored_event(login, calendar + href) for href in load.created()]
    assert len({uid for uid, _, _ in events}) == CLIENTS * PER_CLIENT
    assert len({room for _, room, _ in events}) == CLIENTS * PER_CLIENT
    assert len({number for _, _, number in events}) == CLIENTS * PER_CLIENT

    rows = registry_rows(own_stack)
    assert {(row[1], row[0], row[8]) for row in rows} == set(events)
    assert_registry_is_what_rebuild_makes(own_stack)


def kill_server(stack: Stack) -> None:
    """kill -9 of `visio serve` and its CalDAV child (they share one process group)."""
    assert stack.proc is not None
    os.killpg(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait(timeout=30)
    # The CalDAV child is in the same group; wait until no process of it is left.
    wait_for(lambda: not _group_alive(stack.proc.pid), timeout=30, what="process group gone")
    stack.stop()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("kill_after", [60, 250])
def test_killed_during_writes_loses_no_answered_put(own_stack: Stack, kill_after: int) -> None:
    login, calendar = calendar_of(own_stack)
    load = Load(calendar, login).start()
    load.wait_for_created(kill_after)
    kill_server(own_stack)
    load.finish()  # the clients stop at their first connection error
    created = load.created()
    assert len(created) >= kill_after
    assert all(status in ("201", "error") for status, _ in load.seen), load.seen

    own_stack.start()
    events = {stored_event(login, calendar + href) for href in created}
    assert len({room for _, room, _ in events}) == len(created)
    assert len({number for _, _, number in events}) == len(created)
    rows = assert_registry_is_what_rebuild_makes(own_stack)
    # Every answered PUT has its room (a PUT cut short may have one too, or not).
    assert events <= {(row[1], row[0], row[8]) for row in rows}


def cut_short(stack: Stack, sql: str, *args: str) -> None:
    """Leave the database as a server killed inside a write leaves it: the write's mark
    committed, its own transaction (`sql`) not."""
    with stack.db() as db, db.transaction() as conn:
        conn.execute(sql, args)


def test_a_write_cut_short_is_repaired_at_the_next_start(own_stack: Stack) -> None:
    """Deterministic form of the kill above: the file was written, the commit never came."""
    login, calendar = calendar_of(own_stack)
    auth = (login, PASSWORD)
    kept, gone = ics.event(uid="kept"), ics.event(uid="gone")
    for uid, body in (("kept", kept), ("gone", gone)):
        r = requests.put(f"{calendar}{uid}.ics", data=body.encode(), auth=auth, timeout=30)
        assert r.status_code == 201, r.text
    rows = registry_rows(own_stack)
    assert {row[1] for row in rows} == {"kept", "gone"}
    own_stack.stop()

    path = f"{login}/calendar"
    # "kept": stored, but its row never committed (a new event killed before COMMIT).
    cut_short(own_stack, "DELETE FROM rooms WHERE uid = ?", "kept")
    # "gone": deleted from disk, its row never retired (a DELETE killed before COMMIT).
    (own_stack.data_dir / "collections" / "collection-root" / path / "gone.ics").unlink()
    for uid in ("kept", "gone"):
        cut_short(own_stack, "INSERT INTO pending_writes VALUES (?, ?, ?)", path, f"{uid}.ics", uid)
    assert {row[1] for row in registry_rows(own_stack)} == {"gone"}

    own_stack.start()
    assert registry_rows(own_stack) == {row for row in rows if row[1] == "kept"}
    link = ics.join_link(requests.get(f"{calendar}kept.ics", auth=auth, timeout=30).text)
    assert requests.get(link, timeout=10).status_code == 200
    assert_registry_is_what_rebuild_makes(own_stack)
