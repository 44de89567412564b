"""The live stream: the recording's packets pushed to an RTMP(S) ingest, in a thread.

The ingest may be slow, unreachable or drop the connection: none of that may
hold the room or the recording up. Packets wait in a bounded queue (dropped
when it is full, then the stream resumes at the next keyframe); the thread
connects, reconnects with backoff, and reports the first failure once. The URL
carries the stream key: it is only ever logged through `mask_url`.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import av

from visio_rooms.recorder.encoder import Encoder, Muxer, Pkt

log = logging.getLogger("visio.recorder")
QUEUE = 300  # ~5 s of packets at 30 fps video + audio
RW_TIMEOUT_US = "5000000"  # a stalled ingest fails after 5 s instead of hanging
BACKOFF = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)


def mask_url(url: str) -> str:
    """`rtmp://host/app/KEY` as `rtmp://host/app/***`: what may appear in a log or a page.

    User, password, query and every path segment after the first are hidden.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "***"
    if not parts.scheme or not host:
        return "***"
    segments = [s for s in parts.path.split("/") if s]
    shown = f"/{segments[0]}" if segments else ""
    hidden = "/***" if len(segments) > 1 or parts.query or parts.username else ""
    return f"{parts.scheme}://{host}{port}{shown}{hidden}"


def describe(error: BaseException, url: str) -> str:
    """An error's text with the URL (and so the key) masked out."""
    text = f"{type(error).__name__}: {error}"
    return text.replace(url, mask_url(url))


def valid_stream_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("rtmp", "rtmps") and bool(parts.hostname)


class Streamer:
    def __init__(
        self, url: str, encoder: Encoder, on_failure: Callable[[str], None], room: str
    ) -> None:
        self.url = url
        self.masked = mask_url(url)
        self.room = room
        self.encoder = encoder
        self.on_failure = on_failure
        self.connected = False
        self.sent = 0
        self.connections = 0
        self._queue: queue.Queue[tuple[Pkt, bool] | None] = queue.Queue(QUEUE)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"stream {room}", daemon=True)
        self._failed_once = False

    def start(self) -> None:
        self._thread.start()

    def put(self, packet: Pkt, video: bool) -> None:
        # Full: the ingest is behind or away; this packet is lost, the room is not.
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait((packet, video))

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
        self._thread.join(timeout=10)

    def _fail(self, what: str) -> None:
        log.warning("live stream of room %s to %s: %s", self.room, self.masked, what)
        if not self._failed_once:
            self._failed_once = True
            self.on_failure(what)

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            muxer: Muxer | None = None
            try:
                # The connection is made when the first packet is written, in _pump.
                muxer = Muxer(self.url, "flv", self.encoder, rw_timeout=RW_TIMEOUT_US)
                self._pump(muxer)
            except (av.error.FFmpegError, OSError) as e:
                if self.connected:
                    self._fail(f"connection lost ({describe(e, self.url)}); reconnecting")
                else:
                    self._fail(f"cannot connect ({describe(e, self.url)}); retrying")
            if self.connected:
                attempt = 0
            self.connected = False
            if muxer is not None:
                with contextlib.suppress(av.error.FFmpegError, OSError):
                    muxer.close()
            self._drain()
            if not self._stop.is_set():
                self._stop.wait(BACKOFF[min(attempt, len(BACKOFF) - 1)])
                attempt += 1

    def _pump(self, muxer: Muxer) -> None:
        started = False  # the ingest's first video packet must be a keyframe
        while True:
            item = self._queue.get()
            if item is None:
                return
            packet, video = item
            if not started:
                if not (video and packet.is_keyframe):
                    continue
                started = True
            muxer.write(packet, video)
            self.sent += 1
            if not self.connected:
                self.connected = True
                self.connections += 1
                log.info("live stream of room %s: sending to %s", self.room, self.masked)

    def _drain(self) -> None:
        while True:
            try:
                self._queue.get_nowait()
            except queue.Empty:
                return
