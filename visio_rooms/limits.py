"""What one client may cost the signalling: message rates per socket.

The numbers are settings (visio_core.limits.SignalLimits); this module only
counts. Time is passed in (the loop's monotonic clock), so the counting is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visio_core.limits import Rate, SignalLimits


@dataclass
class TokenBucket:
    rate: Rate
    tokens: float = -1.0  # full at the first take
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens = float(self.rate.burst)
        else:
            refill = (now - self.at) * self.rate.per_second
            self.tokens = min(float(self.rate.burst), self.tokens + refill)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False

    def wait(self) -> float:
        """Seconds until the next message would be taken."""
        return max(0.0, (1.0 - self.tokens) / self.rate.per_second)


# Message types by bucket; anything else a socket sends is "other".
BUCKETS = {"chat": "chat", "reaction": "reaction", "hand": "hand"}


@dataclass
class MessageLimiter:
    """One socket's buckets. A refusal is reported at most once a second per bucket,
    so a flood is not echoed back as a flood of errors."""

    limits: SignalLimits
    buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _told: dict[str, float] = field(default_factory=dict)
    dropped: int = 0

    def bucket_of(self, kind: object) -> str:
        return BUCKETS.get(kind, "other") if isinstance(kind, str) else "other"

    def allow(self, kind: object, now: float) -> tuple[bool, str, bool]:
        """(allowed, bucket, tell the sender) for one message of type `kind`."""
        name = self.bucket_of(kind)
        bucket = self.buckets.get(name)
        if bucket is None:
            rate = {
                "chat": self.limits.rate_chat,
                "reaction": self.limits.rate_reaction,
                "hand": self.limits.rate_hand,
            }.get(name, self.limits.rate_other)
            bucket = self.buckets[name] = TokenBucket(rate)
        if bucket.take(now):
            return True, name, False
        self.dropped += 1
        tell = now - self._told.get(name, -1e9) >= 1.0
        if tell:
            self._told[name] = now
        return False, name, tell

    def retry_after(self, bucket: str) -> float:
        found = self.buckets.get(bucket)
        return found.wait() if found is not None else 0.0
