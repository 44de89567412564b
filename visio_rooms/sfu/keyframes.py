"""Keyframe gating, throttled keyframe requests and continuous timestamps.

All pure state machines (time is passed in), so they are tested on recorded
packet streams without a network or a clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RTP_WRAP = 1 << 32


def is_vp8_keyframe(frame: bytes | memoryview) -> bool:
    """RFC 6386 §9.1: bit 0 of the first byte of a VP8 frame is 0 for a key frame."""
    return len(frame) > 0 and (frame[0] & 0x01) == 0


@dataclass
class KeyframeGate:
    """Lets a subscriber's frames through only from a keyframe on.

    A VP8 decoder fed inter frames without their reference shows garbage or
    nothing, so the gate starts closed and closes again after a loss on our side
    (a full queue) or a change of source; `admit` tells whether to forward.
    """

    open: bool = False
    dropped: int = 0

    def admit(self, keyframe: bool) -> bool:
        if not self.open and keyframe:
            self.open = True
        if not self.open:
            self.dropped += 1
        return self.open

    def close(self) -> None:
        self.open = False


@dataclass
class KeyframeThrottle:
    """Keyframe requests to one publisher: as soon as needed, merged, rate-bounded.

    Every new subscriber, every switch and every browser PLI asks for a keyframe;
    each keyframe costs the publisher several times an inter frame, so requests
    are merged: while a request is unanswered (no keyframe seen since) and younger
    than `interval`, the keyframe on its way serves every later asker too. Once it
    has arrived, a new asker (someone who attached after it) is served at once, but
    never sooner than `min_interval` after the previous request: a storm of joins
    costs at most one keyframe per `min_interval`. A deferred request is never
    lost. `ask(now)` returns the delay after which to send (0: now), or None when a
    request already sent or scheduled covers this one; call `keyframe_seen` for
    each keyframe that arrives and `fire` when a deferred request goes out.
    """

    interval: float = 0.5
    min_interval: float = 0.1
    last_sent: float | None = None
    scheduled_at: float | None = None
    answered: bool = True

    def ask(self, now: float) -> float | None:
        if self.scheduled_at is not None:
            return None
        if self.last_sent is not None:
            if not self.answered and now - self.last_sent < self.interval:
                return None
            due = self.last_sent + self.min_interval
            if now < due:
                self.scheduled_at = due
                return due - now
        self.last_sent, self.answered = now, False
        return 0.0

    def keyframe_seen(self) -> None:
        self.answered = True

    def fire(self, now: float) -> None:
        """The deferred request is being sent now."""
        self.scheduled_at = None
        self.last_sent, self.answered = now, False


@dataclass
class TimestampRewriter:
    """Keeps one outgoing stream's timestamps monotonic across changes of source.

    Each source has its own timestamp origin. When the source behind one sender
    changes (the main window follows the speaker, a slot is given to a newcomer)
    the next frame is placed one frame step after the last one sent, so the
    browser's jitter buffer sees a continuous stream rather than a jump.
    Timestamps are in the codec clock; input is unwrapped (aiortc's receiver
    hands out a growing count), output may exceed 32 bits: the sender wraps it.
    """

    default_step: int  # one frame: 3000 at 90 kHz / 30 fps, 960 for 20 ms of Opus
    source: object | None = None
    offset: int = 0
    last_in: int | None = None
    last_out: int | None = None
    step: int = field(init=False)

    def __post_init__(self) -> None:
        self.step = self.default_step

    def rewrite(self, source: object, timestamp: int) -> int:
        if source is not self.source:
            self.source = source
            base = -self.default_step if self.last_out is None else self.last_out
            self.offset = base + self.default_step - timestamp
            self.step = self.default_step
        elif self.last_in is not None and 0 < timestamp - self.last_in < 10 * self.default_step:
            self.step = timestamp - self.last_in  # learn the source's real frame interval
        self.last_in = timestamp
        out = timestamp + self.offset
        if self.last_out is not None and out <= self.last_out:
            # A source that restarted its clock: never go backwards.
            self.offset += self.last_out + self.step - out
            out = self.last_out + self.step
        self.last_out = out
        return out
