"""Where each live room runs: the placement of rooms on media workers.

A room is placed when it opens, on the least loaded serving worker, and stays
there while it lives (mediasoup places a router on one worker, LiveKit a room
on one node). The front asks `where(room)` for every signalling socket and
`place(room)` when the room is not live anywhere.

`Placement` is the whole interface the front and the supervisor use;
`LocalPlacement` keeps it in this process. A shared implementation (Redis,
several nodes) replaces it without touching the rooms. The choice itself,
`choose`, is a pure function of the workers' last reports.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

log = logging.getLogger("visio.placement")
State = Literal["starting", "serving", "draining", "gone"]
CPU_STEP = 0.25  # quarters of a core: below that, CPU differences are noise (idle, GC)
CLIENT_HEADER = "X-Visio-Relayed-For"  # the front tells a worker whose socket it hands over
SNAPSHOT_FILE = "live-rooms.json"  # in the data dir: where each live room is, for the CLI
RELEASE_AFTER = 30.0  # s: a placed room no worker reports is released after this


@dataclass
class Worker:
    name: str  # "worker-1": stable across restarts of that slot
    address: str  # where the front reaches it (a Unix socket path)
    pid: int = 0
    node: str = ""
    state: State = "starting"
    cpu: float = 0.0  # share of one core over the last report interval
    streams: int = 0  # media streams forwarded (one per subscriber and track)
    people: dict[str, int] = field(default_factory=dict)  # live room -> participants
    rooms: dict[str, float] = field(default_factory=dict)  # placed room -> monotonic time

    def describe(self) -> str:
        return (
            f"{self.name} (pid {self.pid}): cpu {self.cpu:.0%}, "
            f"{self.streams} streams, {len(self.rooms)} rooms"
        )


def load_key(worker: Worker) -> tuple[int, int, int, str]:
    """What "least loaded" means: CPU first (in quarters of a core), then streams, then rooms."""
    return (math.floor(worker.cpu / CPU_STEP), worker.streams, len(worker.rooms), worker.name)


def choose(workers: Iterable[Worker]) -> Worker | None:
    serving = [w for w in workers if w.state == "serving"]
    return min(serving, key=load_key) if serving else None


class Placement(Protocol):
    """What the front asks. Asynchronous: a shared placement (Redis) answers over the network."""

    async def place(self, room_id: str) -> Worker | None: ...

    async def where(self, room_id: str) -> Worker | None: ...

    async def workers(self) -> list[Worker]: ...

    async def drain(self, worker: str) -> None: ...

    async def people(self, room_id: str) -> int: ...


class LocalPlacement:
    """The placement of one node, kept in the front process.

    The interface's methods are coroutines; `add`, `serving`, `report`, `lost` and
    `snapshot` are the supervisor's bookkeeping of its own workers."""

    def __init__(self, node: str = "") -> None:
        self.node = node or os.uname().nodename
        self._workers: dict[str, Worker] = {}
        self._rooms: dict[str, str] = {}  # room -> worker name

    # the interface ---------------------------------------------------------------
    async def place(self, room_id: str) -> Worker | None:
        """The room's worker, placing it first if it is nowhere (None: no worker serves)."""
        found = self._where(room_id)
        if found is not None:
            return found
        candidates = list(self._workers.values())
        worker = choose(candidates)
        if worker is None:
            return None
        worker.rooms[room_id] = time.monotonic()
        self._rooms[room_id] = worker.name
        others = [w.describe() for w in candidates if w is not worker]
        log.info(
            "room %s placed on %s; least loaded%s",
            room_id,
            worker.describe(),
            f" (others: {'; '.join(others)})" if others else " (the only worker serving)",
        )
        return worker

    async def where(self, room_id: str) -> Worker | None:
        return self._where(room_id)

    def _where(self, room_id: str) -> Worker | None:
        name = self._rooms.get(room_id)
        worker = self._workers.get(name) if name else None
        if worker is None or worker.state == "gone":
            return None
        return worker

    async def workers(self) -> list[Worker]:
        return self.all_workers()

    def all_workers(self) -> list[Worker]:
        return list(self._workers.values())

    async def drain(self, worker: str) -> None:
        """No new room on this worker; those it holds stay until they end."""
        found = self._workers.get(worker)
        if found is not None and found.state != "gone":
            found.state = "draining"
            log.info("%s drains: no new rooms", found.describe())

    # what the supervisor tells ----------------------------------------------------
    def add(self, worker: Worker) -> None:
        self._workers[worker.name] = worker

    def serving(self, name: str, pid: int) -> None:
        worker = self._workers[name]
        worker.pid, worker.state = pid, "serving"

    def report(self, name: str, cpu: float, streams: int, people: dict[str, int]) -> None:
        """A worker's load; placed rooms it has not held for a while are released."""
        worker = self._workers.get(name)
        if worker is None:
            return
        worker.cpu, worker.streams, worker.people = cpu, streams, dict(people)
        now = time.monotonic()
        for room_id in list(worker.rooms):
            if room_id in people:
                worker.rooms[room_id] = now
            elif now - worker.rooms[room_id] > RELEASE_AFTER:
                self._release(worker, room_id)
        for room_id in people:  # a room a worker holds is its, whatever we thought
            if self._rooms.get(room_id) not in (name, None):
                continue
            worker.rooms.setdefault(room_id, now)
            self._rooms[room_id] = name

    def lost(self, name: str) -> list[str]:
        """The worker is gone: its rooms are placed nowhere until their next join."""
        worker = self._workers.get(name)
        if worker is None:
            return []
        worker.state = "gone"
        rooms = list(worker.rooms)
        for room_id in rooms:
            self._release(worker, room_id)
        worker.people.clear()
        worker.cpu, worker.streams = 0.0, 0
        return rooms

    async def people(self, room_id: str) -> int:
        worker = self._where(room_id)
        return worker.people.get(room_id, 0) if worker is not None else 0

    def _release(self, worker: Worker, room_id: str) -> None:
        worker.rooms.pop(room_id, None)
        if self._rooms.get(room_id) == worker.name:
            del self._rooms[room_id]

    # for `visio rooms list` ------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, object]]:
        live: dict[str, dict[str, object]] = {}
        for worker in self._workers.values():
            if worker.state == "gone":
                continue
            for room_id in worker.rooms:
                live[room_id] = {
                    "node": self.node,
                    "worker": worker.name,
                    "pid": worker.pid,
                    "participants": worker.people.get(room_id, 0),
                }
        return live


def write_snapshot(path: Path, live: dict[str, dict[str, object]]) -> None:
    """Atomically: a reader never sees half a file."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(live, sort_keys=True))
    os.replace(tmp, path)


def read_snapshot(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
