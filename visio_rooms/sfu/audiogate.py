"""Which participants' audio packets reach the others: those who speak, at most the 4 loudest.

Browsers send ~50 Opus packets a second per microphone, silent or not, each with
its RFC 6464 level (-dBov: 0 loudest, 127 silence). Forwarding the silent ones
costs the server and every receiver for nothing (Jitsi drops them too, and
forwards only its "audio last-N"). The threshold and hangover are the phone
gateway's SilenceGate's; the speaker detector still sees every level.

Use per packet: `level(pid, level, now)` then `audible(pid, now)` (or `passes`,
both at once); `tick(now)` on each room tick re-chooses the loudest.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

PACKET_SECONDS = 0.02


@dataclass
class _Voice:
    last_voiced: float = float("-inf")
    # (arrival time, loudness) of the voiced packets of the last WINDOW seconds
    recent: deque[tuple[float, int]] = field(default_factory=deque)
    total: int = 0  # sum of the loudness in `recent`


class AudioGate:
    # Levels up to 55 count as speech, as in the speaker detector (`<= voice_level`)
    # and design14.md; the phone SilenceGate counts 55 itself as silence: one dB apart.
    SILENT_LEVEL = 55
    HANGOVER = 0.3  # seconds: keeps word endings and short pauses (SilenceGate's 15 frames)
    MAX_AUDIBLE = 4
    WINDOW = 0.5  # seconds of loudness that rank the open ones
    # A challenger displaces an audible participant only when this much louder (on the
    # 0..127 scale of `loudness`: ~10 dB, or ~10 % more of the window spoken). The mean
    # of two equal voices wobbles by a few units from one tick to the next (syllable
    # gaps falling in or out of the window): a voice must not be cut mid-word for that.
    MARGIN = 10.0

    def __init__(self) -> None:
        self._voices: dict[str, _Voice] = {}
        self._audible: set[str] = set()
        self.chosen: frozenset[str] = frozenset()  # the last tick's choice

    def level(self, pid: str, level: int, now: float) -> None:
        """One packet's level (called ~50 times a second per participant: kept O(1))."""
        voice = self._voices.get(pid)
        if voice is None:
            voice = self._voices[pid] = _Voice()
        if level <= self.SILENT_LEVEL:
            voice.last_voiced = now
            loud = 127 - level
            voice.recent.append((now, loud))
            voice.total += loud
        self._expire(voice, now)

    def _expire(self, voice: _Voice, now: float) -> None:
        horizon = now - self.WINDOW
        while voice.recent and voice.recent[0][0] < horizon:
            voice.total -= voice.recent.popleft()[1]

    def loudness(self, pid: str, now: float) -> float:
        """Mean loudness over the last WINDOW seconds, 0 (silence) to 127.

        Why this rather than the speaker detector's score (the share of voiced
        packets): the score ties every continuous talker at 1.0, while who is
        louder is what decides between voices talking at once. Why a mean over
        the window's 25 expected packets rather than over the packets received:
        with discontinuous transmission a silent browser sends few packets, and
        unvoiced packets count 0, so background noise or a lone loud click never
        outranks sustained speech.
        """
        voice = self._voices.get(pid)
        if voice is None:
            return 0.0
        self._expire(voice, now)
        return voice.total * PACKET_SECONDS / self.WINDOW

    def is_open(self, pid: str, now: float) -> bool:
        """Voiced within the hangover."""
        voice = self._voices.get(pid)
        # The epsilon: 15 packets of 0.02 s add up to a hair over 0.3 in floating point.
        return voice is not None and now - voice.last_voiced <= self.HANGOVER + 1e-9

    def audible(self, pid: str, now: float) -> bool:
        """Forward this participant's packet now?

        Open AND chosen by the last tick: the gate closes as soon as speech stops,
        between ticks too. A new speaker is let in at once while fewer than
        MAX_AUDIBLE are audible, without waiting for the tick.
        """
        if not self.is_open(pid, now):
            return False
        if pid in self._audible:
            return True
        live = {q for q in self._audible if self.is_open(q, now)}
        if len(live) >= self.MAX_AUDIBLE:
            return False
        live.add(pid)
        self._audible = live
        return True

    def passes(self, pid: str, level: int, now: float) -> bool:
        """`level` then `audible`: the per-packet call."""
        self.level(pid, level, now)
        return self.audible(pid, now)

    def tick(self, now: float) -> frozenset[str]:
        """Re-choose at most MAX_AUDIBLE open participants, the loudest first.

        Those already audible keep their place unless a waiting one is louder by
        MARGIN; free places go to the loudest waiting (ties: the most recently
        voiced, then the id, so the result does not depend on dict order).
        """
        loud = {pid: self.loudness(pid, now) for pid in self._voices if self.is_open(pid, now)}

        def rank(pid: str) -> tuple[float, float, str]:
            return (-loud[pid], -self._voices[pid].last_voiced, pid)

        kept = sorted((p for p in self._audible if p in loud), key=rank)[: self.MAX_AUDIBLE]
        waiting = sorted((p for p in loud if p not in kept), key=rank)
        while waiting and len(kept) < self.MAX_AUDIBLE:
            kept.append(waiting.pop(0))
        # Swap the quietest kept for the loudest waiting while clearly louder.
        kept.sort(key=rank)
        while waiting and kept and loud[waiting[0]] > loud[kept[-1]] + self.MARGIN:
            kept[-1] = waiting.pop(0)
            kept.sort(key=rank)
        self._audible = set(kept)
        self.chosen = frozenset(kept)
        return self.chosen

    def remove(self, pid: str) -> None:
        self._voices.pop(pid, None)
        self._audible.discard(pid)
        self.chosen = self.chosen - {pid}
