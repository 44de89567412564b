"""The recorder's own process: decode, compose, mix, encode and write, for one room.

It runs in a child process (multiprocessing, spawn) so that its Python work never
competes for the backend's GIL with the event loop that forwards everyone's media,
and so that it can use another core. It receives encoded frames and commands on
`inbox`, and sends back on `reports`: log records, failures (full disk, ingest),
"keyframe wanted", and its statistics when done. It keeps a constant 30 fps
output clocked on wall time: the latest picture is repeated, and the audio mix
covers exactly the time that passed. It ignores SIGTERM/SIGINT (the backend
stops it with a "stop" message, so the file is closed properly) and exits by
itself if the backend dies.

This module imports no aiortc: the child starts quickly.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import logging.handlers
import os
import queue
import signal
import time
from dataclasses import asdict, dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

import av

from visio_rooms.recorder.compositor import Compositor
from visio_rooms.recorder.encoder import FPS, Encoder, FileOutput, Pkt, copy_packet
from visio_rooms.recorder.mixer import RATE, Mixer, rms
from visio_rooms.recorder.streamer import Streamer

log = logging.getLogger("visio.recorder")
KEYFRAME_ASK_EVERY = 0.5


@dataclass
class Stats:
    frames: int = 0
    late_frames: int = 0  # output ticks skipped because the worker was behind
    samples: int = 0
    loud_samples: int = 0  # samples in blocks above silence
    cpu_seconds: float = 0.0  # the recorder process's CPU (all its threads, x264's too)
    size: int = 0  # bytes of the file written


@dataclass(frozen=True)
class Job:
    room_id: str
    title: str
    file: str | None
    stream_url: str | None
    preset: str


def run(job: Job, inbox: Queue[tuple[Any, ...]], reports: Queue[tuple[Any, ...]]) -> None:
    """The child process's entry point."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    root = logging.getLogger()
    root.handlers[:] = [logging.handlers.QueueHandler(reports)]
    root.setLevel(logging.INFO)
    Worker(job, inbox, reports).run()


class Worker:
    def __init__(
        self, job: Job, inbox: Queue[tuple[Any, ...]], reports: Queue[tuple[Any, ...]]
    ) -> None:
        self.job = job
        self.inbox = inbox
        self.reports = reports
        self.parent = os.getppid()
        self.stats = Stats()
        self.compositor = Compositor(job.title)
        self.mixer = Mixer()
        self.streamer: Streamer | None = None
        self._asked_keyframe = 0.0

    def report(self, *message: Any) -> None:
        self.reports.put(message)

    def run(self) -> None:
        cpu0 = time.process_time()
        path = Path(self.job.file) if self.job.file else None
        try:
            encoder = Encoder(self.job.preset)
            output = FileOutput(path, encoder) if path else None
        except (av.error.FFmpegError, OSError) as e:
            self.report("error", f"{type(e).__name__}: {e}")
            return
        if self.job.stream_url:
            self.streamer = Streamer(
                self.job.stream_url,
                encoder,
                lambda m: self.report("fail", "stream", m),
                self.job.room_id,
            )
            self.streamer.start()
        self.report("ready")
        try:
            output = self._loop(encoder, output)
            video, audio = encoder.flush()
            output = self._write(output, [(p, True) for p in video] + [(p, False) for p in audio])
        except Exception:  # a bug or a codec failure: the file so far is kept, the room goes on
            log.exception("recording of room %s failed; the room goes on", self.job.room_id)
        finally:
            if output is not None:
                try:
                    self.stats.size = output.close()
                except (av.error.FFmpegError, OSError) as e:
                    self._file_failed(e)
            elif path is not None and path.exists():
                self.stats.size = path.stat().st_size
            if self.streamer is not None:
                self.streamer.stop()
            self.stats.cpu_seconds = time.process_time() - cpu0
            self.report("done", asdict(self.stats))

    def _loop(self, encoder: Encoder, output: FileOutput | None) -> FileOutput | None:
        t0 = time.monotonic()
        next_frame = 0
        while True:
            if not self._drain(t0 + next_frame / FPS):
                return output
            now = time.monotonic()
            if next_frame % FPS == 0 and os.getppid() != self.parent:
                log.error("recording of room %s: the backend is gone", self.job.room_id)
                return output
            due = int((now - t0) * FPS)
            if due > next_frame:
                self.stats.late_frames += due - next_frame
                next_frame = due  # behind: skip ticks rather than fall further behind
            picture = self.compositor.picture()
            packets = [(p, True) for p in encoder.encode_video(picture, next_frame)]
            next_frame += 1
            self.stats.frames += 1
            samples = int((now - t0) * RATE) - self.stats.samples
            if samples > 0:
                pcm = self.mixer.pull(samples)
                if rms(pcm) > 300:
                    self.stats.loud_samples += samples
                packets += [(p, False) for p in encoder.encode_audio(pcm, self.stats.samples)]
                self.stats.samples += samples
            output = self._write(output, packets)
            if self.compositor.needs_keyframe and now - self._asked_keyframe > KEYFRAME_ASK_EVERY:
                self._asked_keyframe = now
                self.report("keyframe")

    def _drain(self, deadline: float) -> bool:
        """Handle what arrives until `deadline`; False when told to stop."""
        while True:
            timeout = deadline - time.monotonic()
            try:
                item = self.inbox.get(timeout=timeout) if timeout > 0 else self.inbox.get_nowait()
            except queue.Empty:
                return True
            kind = item[0]
            if kind == "a":
                self.mixer.decode(str(item[1]), item[2])
            elif kind == "v":
                self.compositor.decode(str(item[1]), item[2], item[3])
            elif kind == "want":
                self.compositor.want(str(item[1]) if item[1] is not None else None, item[2])
                self.compositor.names = item[3]
            elif kind == "gone":
                self.mixer.remove(str(item[1]))
            elif kind == "gap":
                self.compositor.needs_keyframe = True
            elif kind == "stop":
                return False

    def _write(
        self, output: FileOutput | None, packets: list[tuple[Pkt, bool]]
    ) -> FileOutput | None:
        for packet, video in packets:
            if self.streamer is not None:
                self.streamer.put(copy_packet(packet), video)
            if output is None:
                continue
            try:
                output.write(packet, video)
            except (av.error.FFmpegError, OSError) as e:
                # Closed before the failure is logged: "stopped" means nothing writes it any more.
                with contextlib.suppress(av.error.FFmpegError, OSError):
                    self.stats.size = output.close()
                self._file_failed(e)
                output = None
        return output

    def _file_failed(self, error: BaseException) -> None:
        full = getattr(error, "errno", None) == errno.ENOSPC or "No space" in str(error)
        what = "disk full" if full else f"write error ({type(error).__name__}: {error})"
        log.error(
            "recording of room %s stopped: %s; file %s kept as written so far; the room goes on",
            self.job.room_id,
            what,
            self.job.file,
        )
        self.report("fail", "disk", what)
