"""The media workers of this node: started, watched, replaced, drained.

`visio serve` keeps the portal and the join pages in the front process and the
live rooms in VISIO_MEDIA_WORKERS worker processes (`python -m visio_rooms`),
one per core by default. Each worker serves on a Unix socket in a private
folder; the pool polls its load every second (that is also its heartbeat), and
notices its death at once (the process exits). A dead worker's rooms are
placed again on the workers still serving, and a new worker takes its slot;
pages rejoin by themselves (their sockets close with "restart").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from visio_core.placement import LocalPlacement, Worker, write_snapshot

log = logging.getLogger("visio.workers")
POLL_SECONDS = 1.0
READY_SECONDS = 90.0  # a loaded machine took 20 s and more to import aiortc and av
STOP_SECONDS = 15.0
QUICK_EXIT = 5.0  # a worker dying sooner than this after its start is restarted with backoff


class WorkerPool:
    def __init__(self, count: int, placement: LocalPlacement, snapshot: Path) -> None:
        self.count = count
        self.placement = placement
        self.snapshot = snapshot
        self.folder = Path(tempfile.mkdtemp(prefix="visio-workers-"))  # mode 0700
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.sessions: dict[str, aiohttp.ClientSession] = {}
        self.stopping = False
        self._changed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    # lifetime -------------------------------------------------------------------
    async def start(self) -> None:
        for index in range(1, self.count + 1):
            name = f"worker-{index}"
            worker = Worker(name, str(self.folder / f"{name}.sock"), node=self.placement.node)
            self.placement.add(worker)
            self._tasks.append(asyncio.create_task(self._keep(worker), name=name))
        self._tasks.append(asyncio.create_task(self._publish(), name="placement snapshot"))

    async def stop(self) -> None:
        """Drain: no new rooms, the workers tell their pages and exit."""
        self.stopping = True
        for worker in await self.placement.workers():
            await self.placement.drain(worker.name)
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGTERM)
        waits = [proc.wait() for proc in self.procs.values()]
        try:
            await asyncio.wait_for(asyncio.gather(*waits), STOP_SECONDS)
        except TimeoutError:
            for proc in self.procs.values():
                if proc.returncode is None:
                    log.warning("worker pid %d did not stop in time: killed", proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            await asyncio.gather(*(proc.wait() for proc in self.procs.values()))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for session in self.sessions.values():
            await session.close()
        shutil.rmtree(self.folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            self.snapshot.unlink()

    # what the front asks -------------------------------------------------------------
    async def worker_for(self, room_id: str, timeout: float = 15.0) -> Worker | None:
        """The room's worker, placing the room if needed; waits while no worker serves
        (all starting, or the only one being replaced)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.stopping:
            worker = await self.placement.place(room_id)
            if worker is not None:
                return worker
            self._changed.clear()
            left = deadline - loop.time()
            if left <= 0:
                return None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)
        return None

    def session(self, worker: Worker) -> aiohttp.ClientSession:
        return self.sessions[worker.name]

    async def serving(self) -> int:
        return sum(1 for w in await self.placement.workers() if w.state == "serving")

    # one slot -------------------------------------------------------------------------
    async def _keep(self, worker: Worker) -> None:
        loop = asyncio.get_running_loop()
        backoff = 1.0
        while not self.stopping:
            started = loop.time()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(worker.address)  # a dead worker's socket file
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "visio_rooms", worker.address, worker.name
            )
            self.procs[worker.name] = proc
            worker.pid, worker.state = proc.pid, "starting"
            try:
                await self._serve(worker, proc)
            finally:
                session = self.sessions.pop(worker.name, None)
                if session is not None:
                    await session.close()
            if self.stopping:
                return
            lost = self.placement.lost(worker.name)
            again = {room: await self.placement.place(room) for room in lost}
            log.error(
                "%s (pid %d) exited with code %s; its %d room(s) placed again (%s); "
                "starting a new worker",
                worker.name,
                proc.pid,
                proc.returncode,
                len(lost),
                ", ".join(f"{r} on {w.name if w else 'the next join'}" for r, w in again.items())
                or "none",
            )
            self._changed.set()
            if loop.time() - started < QUICK_EXIT:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            else:
                backoff = 1.0

    async def _serve(self, worker: Worker, proc: asyncio.subprocess.Process) -> None:
        exited = asyncio.ensure_future(proc.wait())
        session = aiohttp.ClientSession(
            # No pool limit: every relayed page holds one connection for its whole
            # meeting, and aiohttp's default of 100 left the 101st join waiting.
            connector=aiohttp.UnixConnector(path=worker.address, limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5),
        )
        self.sessions[worker.name] = session
        loop = asyncio.get_running_loop()
        deadline = loop.time() + READY_SECONDS
        try:
            while not exited.done():  # ready: it answers its first load poll
                if await self._poll(worker, session) is not None:
                    self.placement.serving(worker.name, proc.pid)
                    log.info("%s ready (pid %d)", worker.name, proc.pid)
                    self._changed.set()
                    break
                if loop.time() > deadline:
                    log.error("%s (pid %d) never became ready: killed", worker.name, proc.pid)
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    break
                await asyncio.wait({exited}, timeout=0.1)
            while not exited.done():
                await asyncio.wait({exited}, timeout=POLL_SECONDS)
                if not exited.done():
                    await self._poll(worker, session)
        finally:
            if not exited.done():  # cancelled: the pool stops
                exited.cancel()

    async def _poll(self, worker: Worker, session: aiohttp.ClientSession) -> dict[str, Any] | None:
        try:
            async with session.get(
                "http://worker/internal/load", timeout=aiohttp.ClientTimeout(total=3)
            ) as resp:
                if resp.status != 200:
                    return None
                data: dict[str, Any] = await resp.json()
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError):
            return None  # starting, busy or dying: the process's exit is what counts
        rooms: dict[str, Any] = data["rooms"] if isinstance(data.get("rooms"), dict) else {}
        self.placement.report(
            worker.name,
            float(data.get("cpu", 0.0)),
            int(data.get("streams", 0)),
            {str(k): int(v) for k, v in rooms.items()},
        )
        return data

    async def _publish(self) -> None:
        """`visio rooms list` reads where each live room is from this file."""
        while True:
            with contextlib.suppress(OSError):
                await asyncio.to_thread(write_snapshot, self.snapshot, self.placement.snapshot())
            await asyncio.sleep(POLL_SECONDS)
