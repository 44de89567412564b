"""How a receiver's REMB estimate is used: grace after a view grows, probes when degraded."""

from __future__ import annotations

from visio_rooms.sfu.bandwidth import PROBE_AFTER, PROBE_FOR, VIEW_GRACE, Bandwidth


def test_no_estimate_means_no_limit() -> None:
    assert Bandwidth().usable(None, degraded=False, now=100.0) is None


def test_an_estimate_is_ignored_while_a_grown_view_settles() -> None:
    bw = Bandwidth(view_at=100.0)
    assert bw.usable(300_000, degraded=False, now=100.0 + VIEW_GRACE / 2) is None
    assert bw.usable(300_000, degraded=False, now=100.0 + VIEW_GRACE + 0.1) == 300_000


def test_a_degraded_receiver_stays_on_low_layers_while_a_grown_view_settles() -> None:
    bw = Bandwidth(view_at=100.0)
    assert bw.usable(300_000, degraded=True, now=100.0 + VIEW_GRACE / 2) == 0.0
    assert bw.usable(300_000, degraded=True, now=100.0 + VIEW_GRACE + 0.1) == 300_000


def test_a_degraded_receiver_is_probed_then_judged_again() -> None:
    bw = Bandwidth()
    assert bw.usable(200_000, degraded=True, now=10.0) == 200_000  # degraded from now on
    assert bw.usable(200_000, degraded=True, now=10.0 + PROBE_AFTER - 1) == 200_000
    # Long enough on the low layer: try the full quality for a while, estimate unheard.
    start = 10.0 + PROBE_AFTER
    assert bw.usable(200_000, degraded=True, now=start) is None
    assert bw.usable(200_000, degraded=False, now=start + PROBE_FOR / 2) is None
    # The probe is over: the estimate decides again (a weak link degrades at once).
    assert bw.usable(200_000, degraded=False, now=start + PROBE_FOR + 0.1) == 200_000


def test_recovering_clears_the_degraded_clock() -> None:
    bw = Bandwidth()
    bw.usable(200_000, degraded=True, now=0.0)
    bw.usable(3_000_000, degraded=False, now=5.0)
    # Degraded again later: the probe waits a full PROBE_AFTER from this new start.
    assert bw.usable(200_000, degraded=True, now=6.0) == 200_000
    assert bw.usable(200_000, degraded=True, now=6.0 + PROBE_AFTER - 0.5) == 200_000
