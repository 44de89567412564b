"""Guessing room numbers: failures per key (caller number, source address) in a sliding window.

After `limit` failures within `window` seconds a key is blocked for `block`
seconds. Memory is bounded: at most `max_keys` keys are tracked (the oldest
go first), each with at most `limit` timestamps.
"""

from __future__ import annotations

import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field

log = logging.getLogger("visio.phone")


@dataclass
class RateLimiter:
    limit: int = 6
    window: float = 600.0
    block: float = 900.0
    max_keys: int = 10000
    _failures: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)
    _blocked: dict[str, float] = field(default_factory=dict)

    def blocked(self, key: str, now: float) -> bool:
        until = self._blocked.get(key)
        if until is None:
            return False
        if now >= until:
            del self._blocked[key]
            return False
        return True

    def failure(self, key: str, now: float) -> bool:
        """Count one wrong number; True when `key` is now blocked."""
        times = self._failures.pop(key, None) or deque(maxlen=self.limit)
        while times and times[0] <= now - self.window:
            times.popleft()
        times.append(now)
        self._failures[key] = times
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        if len(times) >= self.limit:
            self._blocked[key] = now + self.block
            del self._failures[key]
            if len(self._blocked) > self.max_keys:
                for old in [k for k, t in self._blocked.items() if t <= now]:
                    del self._blocked[old]
                while len(self._blocked) > self.max_keys:
                    del self._blocked[next(iter(self._blocked))]
            log.warning(
                "phone: %d wrong room numbers from %s: blocked for %d s",
                self.limit,
                _masked(key),
                self.block,
            )
            return True
        return False


def _masked(key: str) -> str:
    """Logs keep a caller's number to its last digits ("caller …1234")."""
    kind, _, value = key.partition(" ")
    return f"{kind} …{value[-4:]}" if kind == "caller" and len(value) > 4 else key
