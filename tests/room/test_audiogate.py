"""Audio gate on level sequences: only speech passes, at most the 4 loudest (issue 14)."""

from __future__ import annotations

from visio_rooms.sfu.audiogate import AudioGate

SILENCE = 127
STEP = 0.02


def run(
    gate: AudioGate, tracks: dict[str, list[int]], start: float = 0.0
) -> list[tuple[float, dict[str, bool]]]:
    """Feed one packet per participant every 20 ms, tick every 200 ms (as the room does).

    Returns, per packet time, whether each participant's packet was forwarded.
    """
    n = max(len(v) for v in tracks.values())
    out = []
    for i in range(n):
        now = start + i * STEP
        passed = {}
        for who, levels in tracks.items():
            if i < len(levels):
                passed[who] = gate.passes(who, levels[i], now)
        out.append((round(now, 2), passed))
        if i % 10 == 9:
            gate.tick(now)
    return out


def forwarded(trace: list[tuple[float, dict[str, bool]]], who: str) -> list[float]:
    return [t for t, passed in trace if passed.get(who)]


def test_silence_and_background_noise_never_open() -> None:
    gate = AudioGate()
    trace = run(gate, {"ann": [SILENCE] * 100, "bob": [60, 56, 90] * 50})
    assert forwarded(trace, "ann") == []
    assert forwarded(trace, "bob") == []
    assert gate.tick(3.0) == frozenset()


def test_speech_opens_at_once() -> None:
    gate = AudioGate()
    trace = run(gate, {"ann": [SILENCE] * 7 + [40] * 20})
    assert forwarded(trace, "ann")[0] == 0.14  # its first voiced packet, no tick needed
    assert gate.is_open("ann", 0.14)


def test_the_threshold_is_55() -> None:
    gate = AudioGate()
    assert not gate.passes("ann", 56, 0.0)
    assert gate.passes("bob", 55, 0.0)


def test_hangover_keeps_300_ms_then_closes_between_ticks() -> None:
    gate = AudioGate()
    levels = [30] * 20 + [SILENCE] * 30  # speech until 0.38 s, then silence
    trace = run(gate, {"ann": levels})
    times = forwarded(trace, "ann")
    assert times[-1] == 0.68  # the last voiced packet at 0.38 + 15 packets of hangover
    assert times == [round(i * STEP, 2) for i in range(35)]
    assert not gate.audible("ann", 0.69)  # the tick at 0.78 has not come yet


def test_a_short_pause_inside_a_sentence_stays_open() -> None:
    gate = AudioGate()
    sentence = [30] * 25 + [SILENCE] * 12 + [30] * 25  # 240 ms pause
    trace = run(gate, {"ann": sentence})
    assert len(forwarded(trace, "ann")) == len(sentence)


def test_at_most_four_of_six_talking_and_the_loudest_win() -> None:
    gate = AudioGate()
    # The quietest start first and take the free places; the loudest arrive later.
    levels = {"f": 45, "e": 40, "d": 35, "c": 30, "b": 25, "a": 20}
    tracks = {
        who: [SILENCE] * (5 * i) + [lvl] * (150 - 5 * i)
        for i, (who, lvl) in enumerate(levels.items())
    }
    trace = run(gate, tracks)
    for _, passed in trace:
        assert sum(passed.values()) <= 4
    # The first four were let in at once, before any tick; b and a were not.
    assert trace[15][1] == {"f": True, "e": True, "d": True, "c": True, "b": False, "a": False}
    assert trace[20][1]["b"] is False  # b's first word: four are already audible
    assert {w for w, ok in trace[-1][1].items() if ok} == {"a", "b", "c", "d"}
    assert gate.chosen == frozenset("abcd")
    # a, the loudest, started at 0.5 s: in within the smoothing window and a tick.
    assert forwarded(trace, "a")[0] <= 0.5 + 0.5 + 0.2


def test_no_flapping_between_equal_voices() -> None:
    gate = AudioGate()
    # Six people talking at the same level at once, syllable gaps at different moments.
    pattern = [30] * 7 + [SILENCE]
    tracks = {who: (pattern[i:] + pattern[:i]) * 40 for i, who in enumerate("abcdef")}
    trace = run(gate, tracks)
    heard = set().union(*({w for w, ok in passed.items() if ok} for _, passed in trace))
    # The first four keep their places the whole time, nobody is cut off for another.
    assert heard == set("abcd")
    assert all(
        passed == dict.fromkeys("abcd", True) | dict.fromkeys("ef", False) for _, passed in trace
    )
    assert gate.chosen == frozenset("abcd")


def test_a_louder_voice_displaces_only_when_clearly_louder() -> None:
    gate = AudioGate()
    run(gate, {w: [30] * 100 for w in "abcd"})
    assert gate.tick(2.0 - STEP) == frozenset("abcd")
    # e, a few dB louder: not enough to take a place.
    trace = run(gate, {**{w: [30] * 100 for w in "abcd"}, "e": [25] * 100}, start=2.0)
    assert forwarded(trace, "e") == []
    # f, much louder, takes the quietest's place (d's) at a tick.
    quieter = {w: [30 + i] * 100 for i, w in enumerate("abcd")}
    trace = run(gate, {**quieter, "f": [10] * 100}, start=4.0)
    assert gate.chosen == frozenset("abcf")
    assert forwarded(trace, "f")[0] <= 4.0 + 0.7
    assert forwarded(trace, "d")[-1] < forwarded(trace, "f")[0]


def test_a_new_speaker_among_fewer_than_four_passes_between_ticks() -> None:
    gate = AudioGate()
    tracks = {w: [30] * 60 for w in "abc"}
    tracks["d"] = [SILENCE] * 23 + [30] * 37  # starts at 0.46 s, ticks are at 0.38 and 0.58
    trace = run(gate, tracks)
    assert forwarded(trace, "d")[0] == 0.46


def test_a_fading_speaker_yields_to_a_waiting_one() -> None:
    gate = AudioGate()
    tracks = {w: [30] * 100 for w in "abcd"}
    tracks["a"] = [30] * 30 + [SILENCE] * 70  # a stops after 0.58 s (open until 0.88 s)
    tracks["e"] = [SILENCE] * 20 + [30] * 80  # e waits from 0.4 s
    trace = run(gate, tracks)
    e_first = forwarded(trace, "e")[0]
    # Not before a stopped; at the latest when a's hangover ends.
    assert 0.58 < e_first <= 0.9
    assert forwarded(trace, "a")[-1] < e_first
    assert gate.chosen == frozenset("bcde")


def test_removal_frees_the_place() -> None:
    gate = AudioGate()
    run(gate, {w: [30] * 50 for w in "abcd"})
    assert not gate.passes("e", 30, 1.0)
    gate.remove("a")
    assert "a" not in gate.chosen
    assert gate.passes("e", 30, 1.02)
    assert not gate.is_open("a", 1.02)
    assert gate.loudness("a", 1.02) == 0.0
    gate.remove("nobody")


def test_loudness_is_a_windowed_mean_that_counts_missing_packets_as_silence() -> None:
    gate = AudioGate()
    for i in range(25):  # 0.5 s of speech at level 27: loudness 100 per packet
        gate.level("ann", 27, i * STEP)
    assert abs(gate.loudness("ann", 0.48) - 100.0) < 1e-6
    # Discontinuous transmission: no packets for a while, the mean falls off.
    assert gate.loudness("ann", 0.73) < 60
    assert gate.loudness("ann", 1.0) == 0.0
