"""The active speaker, from the RFC 6464 levels the browsers put on their audio packets.

Levels are -dBov: 0 is the loudest, 127 silence. A packet counts as voiced when
it is louder than `voice_level`. Each participant's score is the share of the
last `window` seconds that was voiced (packets carry 20 ms each, so discontinuous
transmission during silence does not bias it). A challenger takes the floor only
with sustained speech (`min_score`), clearly above the current speaker
(`margin`), and not before the current speaker has held it `hold` seconds: a
cough or a "hm" scores ~0.2 and never steals the main window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

PACKET_SECONDS = 0.02


@dataclass
class _Track:
    voiced: deque[float] = field(default_factory=deque)  # arrival times of voiced packets
    last_heard: float = 0.0


@dataclass
class SpeakerDetector:
    voice_level: int = 55
    window: float = 1.0
    min_score: float = 0.4
    margin: float = 0.15
    hold: float = 1.0
    speaking_score: float = 0.1
    current: str | None = None
    since: float = 0.0
    _tracks: dict[str, _Track] = field(default_factory=dict)

    def add_level(self, who: str, level: int, now: float) -> None:
        track = self._tracks.setdefault(who, _Track())
        track.last_heard = now
        if level <= self.voice_level:
            track.voiced.append(now)

    def remove(self, who: str) -> None:
        self._tracks.pop(who, None)
        if self.current == who:
            self.current = None

    def score(self, who: str, now: float) -> float:
        track = self._tracks.get(who)
        if track is None:
            return 0.0
        horizon = now - self.window
        while track.voiced and track.voiced[0] < horizon:
            track.voiced.popleft()
        return min(1.0, len(track.voiced) * PACKET_SECONDS / self.window)

    def speaking(self, now: float) -> set[str]:
        """Who is audible right now, for the speaking indicator of audio rooms."""
        return {w for w in self._tracks if self.score(w, now) >= self.speaking_score}

    def tick(self, now: float) -> str | None:
        """Re-decide the dominant speaker; returns it (None until someone spoke)."""
        scores = {w: self.score(w, now) for w in self._tracks}
        if not scores:
            return self.current
        best = max(scores, key=lambda w: scores[w])
        if best == self.current:
            return self.current
        current_score = scores.get(self.current, 0.0) if self.current else 0.0
        held = now - self.since >= self.hold
        if (
            scores[best] >= self.min_score
            and scores[best] >= current_score + self.margin
            and (self.current is None or held)
        ):
            self.current, self.since = best, now
        return self.current
