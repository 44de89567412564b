"""Active speaker selection on level sequences (one RFC 6464 level per 20 ms packet)."""

from __future__ import annotations

from visio_rooms.sfu.speaker import SpeakerDetector

SILENCE = 127


def speech(seconds: float, level: int = 30, pause_every: int = 9) -> list[int]:
    """Speech as browsers report it: loud packets with short gaps between syllables."""
    n = int(seconds / 0.02)
    return [SILENCE if i % pause_every == pause_every - 1 else level for i in range(n)]


def play(
    det: SpeakerDetector, tracks: dict[str, list[int]], start: float = 0.0
) -> list[tuple[float, str | None]]:
    """Feed every participant's levels in step and tick every 100 ms; returns decisions."""
    n = max(len(v) for v in tracks.values())
    decisions = []
    for i in range(n):
        now = start + i * 0.02
        for who, levels in tracks.items():
            det.add_level(who, levels[i] if i < len(levels) else SILENCE, now)
        if i % 5 == 4:
            decisions.append((round(now, 2), det.tick(now)))
    return decisions


def test_the_one_who_talks_becomes_the_speaker_within_a_second() -> None:
    det = SpeakerDetector()
    decisions = play(det, {"alice": speech(3), "bob": [SILENCE] * 150})
    first = next(t for t, who in decisions if who == "alice")
    assert first <= 1.0
    assert decisions[-1][1] == "alice"


def test_a_cough_does_not_steal_the_main_window() -> None:
    det = SpeakerDetector()
    cough = [SILENCE] * 100 + [10] * 15 + [SILENCE] * 85  # 300 ms burst at 2 s
    decisions = play(det, {"alice": speech(4), "bob": cough})
    assert all(who == "alice" for t, who in decisions if t > 1.0)


def test_the_floor_passes_when_the_other_talks_for_real() -> None:
    det = SpeakerDetector()
    alice = speech(2) + [SILENCE] * 150
    bob = [SILENCE] * 100 + speech(3)
    decisions = play(det, {"alice": alice, "bob": bob})
    switch = next(t for t, who in decisions if who == "bob")
    assert 2.0 < switch <= 3.2
    assert decisions[-1][1] == "bob"
    # No flapping back and forth once bob has it.
    after = [who for t, who in decisions if t >= switch]
    assert set(after) == {"bob"}


def test_overlapping_talk_keeps_the_current_speaker_until_clearly_louder() -> None:
    det = SpeakerDetector()
    alice = speech(4)
    bob = [SILENCE] * 100 + speech(2, pause_every=3)  # bob chimes in, less steadily
    decisions = play(det, {"alice": alice, "bob": bob})
    assert all(who == "alice" for t, who in decisions if t > 1.0)


def test_quiet_background_noise_is_not_speech() -> None:
    det = SpeakerDetector()
    decisions = play(det, {"alice": [70] * 200, "bob": [90] * 200})
    assert all(who is None for _, who in decisions)


def test_leaving_speaker_releases_the_floor_and_speaking_set() -> None:
    det = SpeakerDetector()
    play(det, {"alice": speech(2)})
    assert det.current == "alice" and "alice" in det.speaking(2.0)
    det.remove("alice")
    assert det.current is None and det.speaking(2.0) == set()
