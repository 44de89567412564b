"""One room's recorder, as the event loop sees it: sinks on the room's publications
and a child process (worker.py) that decodes, composes, mixes and encodes once.

The loop only hands references to a multiprocessing queue (`push` is called by
the Publication pumps; pickling and writing happen in the queue's feeder
thread), so forwarding to the participants never waits on the recorder, and the
recorder's Python work never competes with the loop for the GIL.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from visio_rooms.recorder import worker
from visio_rooms.recorder.worker import Job, Stats
from visio_rooms.sfu.forwarding import Publication
from visio_rooms.sfu.passthrough import EncodedFrame

log = logging.getLogger("visio.recorder")
BACKLOG = 1500  # items waiting for the worker (~10 s of a room's media): past that, drop
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0
_CONTEXT = multiprocessing.get_context("spawn")  # no fork of a process full of threads


class RecorderError(RuntimeError):
    """The recorder process could not start (its file cannot be created, …)."""


class _Sink:
    """What a Publication hands its frames to: one line into the worker's queue."""

    def __init__(self, recorder: Recorder, video: bool) -> None:
        self.recorder = recorder
        self.video = video

    def push(self, publication: Publication, frame: EncodedFrame, key: bool) -> None:
        inbox = self.recorder.inbox
        if inbox.qsize() > BACKLOG:  # the worker is stuck (a hung disk?): never grow for ever
            self.recorder.dropped += 1
            return
        if self.recorder.dropped:
            self.recorder.dropped = 0
            inbox.put(("gap",))  # the picture restarts at the next keyframe
        inbox.put(("v" if self.video else "a", id(publication), frame.data, key))

    def detach(self, publication: Publication) -> None:
        self.recorder.forget(publication)


class Recorder:
    """Records (and/or streams) one live room until `stop()`."""

    def __init__(
        self,
        room_id: str,
        title: str,
        file: Path | None,
        stream_url: str | None,
        on_failure: Callable[[str, str], None],
        preset: str = "veryfast",
    ) -> None:
        self.room_id = room_id
        self.file_path = file
        self.stream_url = stream_url
        self.on_failure = on_failure  # (what: "disk" | "stream", message), on the loop
        self.job = Job(room_id, title, str(file) if file else None, stream_url, preset)
        self.inbox: Any = _CONTEXT.Queue()
        self.stats = Stats()
        self.finished = False  # the worker closed its file itself (not killed)
        self.dropped = 0  # frames dropped since the backlog overflowed
        self.needs_keyframe = False  # the worker waits for a keyframe of the main picture
        self._reports: Any = _CONTEXT.Queue()
        self._audio_sink = _Sink(self, video=False)
        self._video_sink = _Sink(self, video=True)
        self._voices: dict[int, Publication] = {}
        self._main: Publication | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._process: Any = None
        self._reader: threading.Thread | None = None
        self._spawned: asyncio.Future[None] | None = None
        self._ready = threading.Event()
        self._start_error: str | None = None

    @property
    def size(self) -> int:
        return self.stats.size

    # the event loop's side -------------------------------------------------
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._process = _CONTEXT.Process(
            target=worker.run,
            args=(self.job, self.inbox, self._reports),
            name=f"record {self.room_id}",
            daemon=True,
        )
        # Its own future: a stop() after this start was cancelled half-way waits for it.
        self._spawned = asyncio.ensure_future(asyncio.to_thread(self._spawn))
        await asyncio.shield(self._spawned)
        ready = await asyncio.to_thread(self._ready.wait, START_TIMEOUT)
        if self._start_error is not None or not ready:
            await self._join()
            raise RecorderError(self._start_error or "the recorder did not start in time")

    def _spawn(self) -> None:
        self._process.start()
        self._reader = threading.Thread(target=self._read, name=f"recorder reports {self.room_id}")
        self._reader.start()

    def follow(
        self, voices: list[Publication], main: Publication | None, main_name: str, names: list[str]
    ) -> None:
        """Attach to the room's microphones and main picture as they are now."""
        current = {id(p): p for p in voices}
        for key, pub in list(self._voices.items()):
            if key not in current:
                pub.sinks.discard(self._audio_sink)
                del self._voices[key]
                self.inbox.put(("gone", key))
        for key, pub in current.items():
            if key not in self._voices:
                self._voices[key] = pub
                pub.sinks.add(self._audio_sink)
        if main is not self._main:
            if self._main is not None:
                self._main.sinks.discard(self._video_sink)
            self._main = main
            if main is not None:
                main.sinks.add(self._video_sink)
                main.request_keyframe()
        self.inbox.put(("want", id(main) if main else None, main_name, tuple(names)))
        if main is not None and self.needs_keyframe:
            self.needs_keyframe = False
            main.request_keyframe()  # throttled by the Publication

    def forget(self, publication: Publication) -> None:
        key = id(publication)
        if self._voices.pop(key, None) is not None:
            self.inbox.put(("gone", key))
        if publication is self._main:
            self._main = None

    async def stop(self) -> None:
        """Returns once the recorder process has ended: its file is closed (last fragment
        written, synced: `finished`) or, if it had to be killed, kept as written; in both
        cases nothing writes to it any more."""
        for pub in self._voices.values():
            pub.sinks.discard(self._audio_sink)
        self._voices.clear()
        if self._main is not None:
            self._main.sinks.discard(self._video_sink)
            self._main = None
        self.inbox.put(("stop",))
        await self._join()

    async def _join(self) -> None:
        if self._spawned is not None:
            await asyncio.gather(self._spawned, return_exceptions=True)
        process = self._process
        if process is not None and process.pid is not None:  # started
            await asyncio.to_thread(process.join, STOP_TIMEOUT)
            if process.is_alive():
                log.error("recorder of room %s did not stop: killed", self.room_id)
                process.kill()
                await asyncio.to_thread(process.join, 5)
        self._ready.set()  # a start() still waiting gives up: there is nothing left to wait for
        self._reports.put(None)  # ends the reader
        if self._reader is not None:
            await asyncio.to_thread(self._reader.join, 10)
        self.inbox.close()
        self.inbox.cancel_join_thread()

    # reports from the recorder process, read in a thread -------------------------
    def _read(self) -> None:
        while True:
            message = self._reports.get()
            if message is None:
                return
            if isinstance(message, logging.LogRecord):
                logging.getLogger(message.name).handle(message)
                continue
            kind = message[0]
            if kind == "ready":
                self._ready.set()
            elif kind == "error":
                self._start_error = str(message[1])
                self._ready.set()
            elif kind == "fail":
                self._call(self.on_failure, message[1], message[2])
            elif kind == "keyframe":
                self.needs_keyframe = True
            elif kind == "done":  # sent after the file is closed
                self.stats = Stats(**message[1])
                self.finished = True

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn, *args)
