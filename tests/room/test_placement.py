"""Where rooms are placed: the in-process placement's rules (visio_core/placement.py)."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

from visio_core.placement import (
    CPU_STEP,
    RELEASE_AFTER,
    LocalPlacement,
    Worker,
    choose,
    read_snapshot,
    write_snapshot,
)
from visio_rooms.app import CpuMeter

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def placement(count: int) -> LocalPlacement:
    p = LocalPlacement(node="node-a")
    for i in range(1, count + 1):
        p.add(Worker(f"worker-{i}", f"/run/worker-{i}.sock"))
        p.serving(f"worker-{i}", 1000 + i)
    return p


def test_ten_rooms_over_three_idle_workers_are_within_one_of_each_other() -> None:
    p = placement(3)
    placed = [run(p.place(f"room-{i}")) for i in range(10)]
    counts = Counter(w.name for w in placed if w is not None)
    assert sorted(counts.values()) == [3, 3, 4]


def test_a_room_stays_where_it_was_placed_while_it_lives() -> None:
    p = placement(2)
    first = run(p.place("room"))
    assert first is not None
    p.report(first.name, 0.95, 400, {"room": 12})  # its worker is now the busier one
    assert run(p.place("room")) is first
    assert run(p.where("room")) is first
    assert run(p.people("room")) == 12


def test_the_least_loaded_worker_by_cpu_then_streams_gets_the_new_room() -> None:
    p = placement(3)
    p.report("worker-1", 0.80, 10, {})
    p.report("worker-2", 0.30, 200, {})
    p.report("worker-3", 0.35, 100, {})  # same quarter of a core as worker-2, fewer streams
    chosen = run(p.place("new"))
    assert chosen is not None and chosen.name == "worker-3"


def test_cpu_noise_below_a_step_does_not_pile_rooms_on_one_worker() -> None:
    p = placement(2)
    p.report("worker-1", 0.06, 0, {})  # an idle worker's GC, an import, a log line
    p.report("worker-2", 0.04, 0, {})
    names = {w.name for w in (run(p.place("a")), run(p.place("b"))) if w is not None}
    assert names == {"worker-1", "worker-2"}


def test_draining_starting_and_gone_workers_take_no_new_room() -> None:
    p = placement(3)
    run(p.drain("worker-1"))
    p.lost("worker-2")
    p.add(Worker("worker-4", "/run/worker-4.sock"))  # still starting
    assert {w.name for w in (run(p.place(f"r{i}")) for i in range(4)) if w} == {"worker-3"}
    run(p.drain("worker-3"))
    assert run(p.place("one more")) is None
    assert choose(run(p.workers())) is None


def test_a_lost_worker_gives_back_its_rooms_for_placing_again() -> None:
    p = placement(2)
    a, b = run(p.place("a")), run(p.place("b"))
    assert a is not None and b is not None and a is not b
    lost = p.lost(a.name)
    assert lost == ["a"]
    assert run(p.where("a")) is None
    again = run(p.place("a"))
    assert again is b  # the worker still serving
    assert run(p.where("b")) is b


def test_a_room_no_worker_reports_any_more_is_released(monkeypatch) -> None:
    p = placement(1)
    run(p.place("ended"))
    run(p.place("live"))
    later = time.monotonic() + RELEASE_AFTER + 1
    monkeypatch.setattr(time, "monotonic", lambda: later)
    p.report("worker-1", 0.1, 4, {"live": 2})
    assert run(p.where("ended")) is None
    assert run(p.where("live")) is not None


def test_a_room_a_worker_reports_is_known_there_even_if_placed_by_someone_else() -> None:
    p = placement(2)
    p.report("worker-2", 0.1, 2, {"adopted": 3})
    found = run(p.where("adopted"))
    assert found is not None and found.name == "worker-2"


def test_the_snapshot_names_node_worker_pid_and_people(tmp_path: Path) -> None:
    p = placement(2)
    w = run(p.place("room"))
    assert w is not None
    p.report(w.name, 0.2, 6, {"room": 3})
    path = tmp_path / "live-rooms.json"
    write_snapshot(path, p.snapshot())
    assert read_snapshot(path) == {
        "room": {"node": "node-a", "worker": w.name, "pid": w.pid, "participants": 3}
    }
    assert read_snapshot(tmp_path / "missing.json") == {}


def test_a_burst_right_after_start_up_is_not_a_busy_worker() -> None:
    # A worker polled a moment after its start: whatever it burnt in that moment, its
    # reading stays under one quarter of a core (placement's unit), so the next rooms
    # are not all sent to the other worker.
    meter = CpuMeter()
    end = time.monotonic() + 0.1
    while time.monotonic() < end:
        pass
    assert meter.read() < CPU_STEP
