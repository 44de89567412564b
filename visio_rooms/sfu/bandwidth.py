"""How a subscriber's REMB estimate is used to choose layers (see subscriptions.py)."""

from __future__ import annotations

from dataclasses import dataclass

VIEW_GRACE = 5.0  # s after a view grows: the estimate has not caught up with it yet
PROBE_AFTER = 15.0  # s degraded before trying the full quality again
PROBE_FOR = 5.0  # s the probe lasts; a receiver still too weak then degrades again


@dataclass
class Bandwidth:
    """One subscriber's use of its REMB estimate: a browser only raises its estimate
    up to about 1.5x what it receives, so a view that grows, or a receiver on low
    layers, would never look able to take more; grace periods and probes fix that."""

    view_at: float = -1e9
    degraded_at: float | None = None
    probe_until: float = -1e9

    def usable(self, estimate: float | None, degraded: bool, now: float) -> float | None:
        if estimate is None or now < self.probe_until:
            return None
        if now - self.view_at < VIEW_GRACE:
            # The estimate lags a grown view: not judged meanwhile. A page already on
            # low layers stays there (0): a jump to full quality for the grace alone
            # cost two layer switches, each waiting for a keyframe, and under load
            # such flips came faster than keyframes and pictures never showed.
            return 0.0 if degraded else None
        if degraded:
            if self.degraded_at is None:
                self.degraded_at = now
            elif now - self.degraded_at >= PROBE_AFTER:
                self.degraded_at = None
                self.probe_until = now + PROBE_FOR
                return None
        else:
            self.degraded_at = None
        return estimate
