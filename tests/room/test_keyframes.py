"""Keyframe gating, throttling and timestamp continuity on packet streams."""

from __future__ import annotations

import itertools

import pytest

from visio_rooms.sfu.keyframes import (
    KeyframeGate,
    KeyframeThrottle,
    TimestampRewriter,
    is_vp8_keyframe,
)

# First bytes of real VP8 frames: a key frame (start code 9d 01 2a follows the
# 3-byte tag) and two inter frames, as libvpx writes them.
KEY = bytes.fromhex("5043009d012a8002e001")
INTER = bytes.fromhex("b1150000")
INTER2 = bytes.fromhex("d10a0000")


def test_vp8_keyframe_bit() -> None:
    assert is_vp8_keyframe(KEY)
    assert not is_vp8_keyframe(INTER)
    assert not is_vp8_keyframe(INTER2)
    assert not is_vp8_keyframe(b"")


def test_gate_drops_until_first_keyframe_then_forwards_everything() -> None:
    stream = [INTER, INTER2, INTER, KEY, INTER, INTER2, KEY, INTER]
    gate = KeyframeGate()
    passed = [f for f in stream if gate.admit(is_vp8_keyframe(f))]
    assert passed == stream[3:]
    assert gate.dropped == 3


def test_gate_closes_after_a_switch_and_waits_for_the_next_key() -> None:
    gate = KeyframeGate()
    assert gate.admit(True) and gate.admit(False)
    gate.close()
    assert not gate.admit(False)
    assert gate.admit(True)


def test_throttle_merges_requests_while_a_keyframe_is_on_its_way() -> None:
    t = KeyframeThrottle(interval=0.5, min_interval=0.1)
    assert t.ask(10.0) == 0.0  # first: at once
    assert t.ask(10.05) is None  # the keyframe asked for serves this one too
    assert t.ask(10.4) is None
    assert t.ask(10.5) == 0.0  # unanswered for a whole interval: ask again


def test_throttle_serves_a_newcomer_at_once_after_the_keyframe_arrived() -> None:
    # A subscriber who attaches after the last keyframe went by must not wait for
    # the end of an interval: that wait was the bulk of the join-to-first-frame time.
    t = KeyframeThrottle(interval=0.5, min_interval=0.1)
    assert t.ask(10.0) == 0.0
    t.keyframe_seen()
    assert t.ask(10.15) == 0.0
    t.keyframe_seen()
    assert t.ask(10.2) == pytest.approx(0.05)  # but never sooner than min_interval
    assert t.ask(10.21) is None  # covered by the deferred one
    t.fire(10.25)
    assert t.ask(10.3) is None  # unanswered yet


def test_throttle_rate_under_a_storm_of_requests() -> None:
    t = KeyframeThrottle(interval=0.5)
    sent = 0
    now = 0.0
    while now < 10.0:  # 32 subscribers asking every 10 ms for 10 s
        delay = t.ask(now)
        if delay == 0.0:
            sent += 1
        elif t.scheduled_at is not None and now >= t.scheduled_at:
            t.fire(now)
            sent += 1
        now = round(now + 0.01, 2)
    assert 18 <= sent <= 21  # about one per 0.5 s


def test_throttle_rate_under_a_storm_of_answered_requests() -> None:
    # Every request answered by a keyframe 50 ms later, askers every 10 ms: the
    # publisher still sends at most one keyframe per min_interval.
    t = KeyframeThrottle(interval=0.5, min_interval=0.1)
    sent: list[float] = []
    now = 0.0
    while now < 10.0:
        if sent and now >= sent[-1] + 0.05:
            t.keyframe_seen()
        delay = t.ask(now)
        if delay == 0.0:
            sent.append(now)
        elif t.scheduled_at is not None and now >= t.scheduled_at:
            t.fire(now)
            sent.append(now)
        now = round(now + 0.01, 2)
    gaps = [b - a for a, b in itertools.pairwise(sent)]
    assert min(gaps) >= 0.1 - 1e-9 and 90 <= len(sent) <= 101


def test_timestamps_stay_continuous_across_source_switches() -> None:
    rw = TimestampRewriter(default_step=3000)
    alice, bob = object(), object()
    out = [rw.rewrite(alice, 1000 + 3000 * i) for i in range(5)]
    assert out == [0, 3000, 6000, 9000, 12000]
    # Bob's clock is somewhere else entirely; the stream goes on one frame later.
    out2 = [rw.rewrite(bob, 987_654_321 + 3000 * i) for i in range(3)]
    assert out2 == [15000, 18000, 21000]
    # Back to Alice, whose clock moved on meanwhile.
    assert rw.rewrite(alice, 1000 + 3000 * 50) == 24000


def test_timestamps_never_go_backwards_when_a_source_restarts_its_clock() -> None:
    rw = TimestampRewriter(default_step=960)
    src = object()
    seq = [rw.rewrite(src, ts) for ts in (0, 960, 1920, 0, 960)]
    assert seq == sorted(seq) and len(set(seq)) == len(seq)


def test_learned_frame_step_used_at_the_next_switch_is_the_default() -> None:
    rw = TimestampRewriter(default_step=3000)
    a, b = object(), object()
    for i in range(4):
        rw.rewrite(a, 6000 * i)  # a 15 fps source
    assert rw.step == 6000
    assert rw.rewrite(b, 5) == 18000 + 3000
