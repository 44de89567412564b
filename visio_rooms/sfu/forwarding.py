"""Fan-out of encoded frames: one Publication per incoming track, one Forwarder per outgoing.

A Publication reads the encoded frames of one participant's track (camera,
screen or microphone) once and hands each to the Forwarders attached to it. A
Forwarder is the MediaStreamTrack behind one of a subscriber's senders; aiortc
only re-packetises what it returns. Its source can change (the main window
follows the speaker; a slot freed by someone leaving goes to the next one):
timestamps are rewritten to stay continuous and a keyframe is requested.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from visio_rooms.sfu.keyframes import (
    KeyframeGate,
    KeyframeThrottle,
    TimestampRewriter,
    is_vp8_keyframe,
)
from visio_rooms.sfu.passthrough import EncodedFrame

log = logging.getLogger("visio.sfu")

VIDEO_STEP = 3000  # 90 kHz / 30 fps
AUDIO_STEP = 960  # 48 kHz * 20 ms
VIDEO_QUEUE = 90  # ~3 s at 30 fps: past that a subscriber is too slow and restarts at a key
AUDIO_QUEUE = 50


class Sink(Protocol):
    """What a Publication hands its frames to: a Forwarder, or a decoder (phone mix, recorder)."""

    def push(self, publication: Publication, frame: EncodedFrame, key: bool) -> None: ...

    def detach(self, publication: Publication) -> None: ...


class Publication:
    """One participant's incoming encoded track and who it is forwarded to."""

    def __init__(
        self,
        owner: str,
        kind: str,
        source: str,
        track: MediaStreamTrack,
        send_pli: Callable[[], Awaitable[bool]],
        pli_interval: float = 0.5,
    ) -> None:
        self.owner = owner
        self.kind = kind  # "audio" | "video"
        self.source = source  # "microphone" | "camera" | "screen"
        self.track = track
        self.sinks: set[Sink] = set()
        self.frames = 0
        self.keyframes = 0
        self.active = True  # screen sharing stopped / camera off: the room stops routing it
        # Audio: decides, frame by frame, whether pages hear it (audiogate.py); the
        # recorder and the phone mix, which are not Forwarders, get every frame.
        self.gate: Callable[[], bool] | None = None
        self.audible = True
        self.octets = 0  # payload bytes received: `rate` is measured from it
        self.rate = 0.0  # bit/s over the last measure (LiveRoom's review)
        self._measured = (0.0, 0)
        self._send_pli = send_pli
        self._throttle = KeyframeThrottle(pli_interval)
        self._pending: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._requests: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._pump(), name=f"publication {self.owner}")

    async def stop(self) -> None:
        if self._pending:
            self._pending.cancel()
        for sink in list(self.sinks):
            sink.detach(self)
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _pump(self) -> None:
        video = self.kind == "video"
        try:
            while True:
                frame: EncodedFrame = await self.track.recv()  # type: ignore[assignment]
                key = video and is_vp8_keyframe(frame.data)
                if self.gate is not None:
                    self.audible = self.gate()
                self.frames += 1
                self.octets += len(frame.data)
                if key:
                    self.keyframes += 1
                    self._throttle.keyframe_seen()
                for sink in list(self.sinks):
                    sink.push(self, frame, key)
        except MediaStreamError:
            pass  # the publisher's track ended: its peer connection closed

    def measure(self, now: float) -> float:
        """Update `rate` (bit/s since the last call) and return it."""
        at, octets = self._measured
        if at and now > at:
            self.rate = (self.octets - octets) * 8 / (now - at)
        self._measured = (now, self.octets)
        return self.rate

    def request_keyframe(self) -> None:
        if self.kind != "video":
            return
        loop = asyncio.get_running_loop()
        delay = self._throttle.ask(loop.time())
        if delay is None:
            return
        if delay <= 0:
            self._spawn_send()
        else:
            self._pending = loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        self._throttle.fire(loop.time())
        self._pending = None
        self._spawn_send()

    def _spawn_send(self) -> None:
        task = asyncio.get_running_loop().create_task(self._send())
        self._requests.add(task)
        task.add_done_callback(self._requests.discard)

    async def _send(self) -> None:
        try:
            await self._send_pli()
        except Exception:  # a transport closing under us: the next request retries
            log.debug("keyframe request to %s failed", self.owner, exc_info=True)


class Forwarder(MediaStreamTrack):
    """An outgoing track whose frames come from whichever Publication is attached."""

    def __init__(self, kind: str, on_first_frame: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.kind = kind
        self.publication: Publication | None = None
        self._queue: deque[tuple[Publication, EncodedFrame]] = deque()
        self._limit = VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE
        self._ready = asyncio.Event()
        self._gate = KeyframeGate()
        self._timestamps = TimestampRewriter(VIDEO_STEP if kind == "video" else AUDIO_STEP)
        self._on_first_frame = on_first_frame
        self._deliver: Callable[[EncodedFrame], None] | None = None
        self.sent = 0
        self.attached_at = time.monotonic()

    def attach(self, publication: Publication | None) -> None:
        if publication is self.publication:
            return
        if self.publication is not None:
            self.publication.sinks.discard(self)
        self.publication = publication
        self._queue.clear()
        self._gate.close()
        self.attached_at = time.monotonic()
        if publication is not None:
            publication.sinks.add(self)
            publication.request_keyframe()

    def detach(self, publication: Publication) -> None:
        if self.publication is publication:
            self.attach(None)

    def push(self, publication: Publication, frame: EncodedFrame, key: bool) -> None:
        if publication is not self.publication or self.readyState != "live":
            return
        if not publication.audible:
            return  # silence, or not among the loudest: nothing to send (the sender's
            # sequence numbers stay continuous, so the page sees no loss)
        if self.kind == "video" and not self._gate.admit(key):
            # Keep asking while we wait: a request can be lost (the publisher's
            # stream had not started, a PLI dropped); the throttle bounds the rate.
            publication.request_keyframe()
            return
        if len(self._queue) >= self._limit:
            # The subscriber's sender fell behind: drop the backlog and restart at a key.
            self._queue.clear()
            if self.kind == "video":
                self._gate.close()
                publication.request_keyframe()
                return
        if self._deliver is not None:
            self._deliver(self._outgoing(publication, frame))
            return
        self._queue.append((publication, frame))
        self._ready.set()

    def deliver_to(self, deliver: Callable[[EncodedFrame], None] | None) -> None:
        """Push mode: hand each frame to `deliver` as it arrives (None: back to recv()).

        The lean sender (passthrough.forward_sender) sends a frame synchronously,
        so pushing saves one task switch per frame and subscriber; what was
        queued before (the first keyframe, while the connection came up) goes first.
        """
        self._deliver = deliver
        while deliver is not None and self._queue:
            deliver(self._outgoing(*self._queue.popleft()))

    def keyframe_wanted(self) -> None:
        """The subscriber's browser lost a picture (PLI/FIR): ask the publisher."""
        if self.publication is not None:
            self.publication.request_keyframe()

    async def recv(self) -> Any:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._outgoing(*self._queue.popleft())

    def _outgoing(self, publication: Publication, frame: EncodedFrame) -> EncodedFrame:
        self.sent += 1
        if self.sent == 1 and self._on_first_frame is not None:
            self._on_first_frame()
        # The payload is shared with every other subscriber, never copied; only
        # the timestamp is this subscriber's own.
        pts = self._timestamps.rewrite(publication, frame.pts)
        return EncodedFrame(frame.data, pts, frame.time_base)

    def stop(self) -> None:
        super().stop()
        self._deliver = None
        if self.publication is not None:
            self.publication.sinks.discard(self)
        self._ready.set()
