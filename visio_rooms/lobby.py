"""The lobby's bookkeeping: who knocks, who was removed, who was refused a moment ago.

A *mark* names an entrant the way the server can recognise them again:
`pid:<participant id>` (their resume token), `link:<token hash>` (a personal
link), `login:<account>`, `addr:<address>` (a guest of the room's shared link)
and `phone:<caller number>`. Removing someone bans their marks until the end of
the meeting: whoever carries one of them knocks again, even with a personal
link or in a room without lobby, and admitting them lifts the ban. A refusal
cools down the knocker's address, personal link, login or phone number for a
while (the shared link itself is never cooled down: it belongs to every guest).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from visio_core import schedule

RESTART = "restart"  # dismiss reason: the backend stops, pages come back by themselves
REMOVAL_FALLBACK = 12 * 3600  # seconds a removal lasts when the meeting's end is unknown
MAX_COOLDOWNS = 10000


@dataclass
class Knock:
    id: str
    name: str
    admit: Callable[[], Awaitable[None]]
    dismiss: Callable[[str], Awaitable[None]]  # "refused", "full", a closing reason, RESTART
    marks: frozenset[str] = frozenset()
    cooldown: frozenset[str] = frozenset()  # what a refusal cools down
    phone: bool = False

    def public(self) -> dict[str, object]:
        out: dict[str, object] = {"id": self.id, "name": self.name}
        if self.phone:
            out["phone"] = True
        return out


@dataclass
class Removals:
    """One room's removed marks, each with the wall-clock time it lapses at."""

    marks: dict[str, float] = field(default_factory=dict)

    def ban(self, marks: Iterable[str], until: float) -> None:
        for mark in marks:
            self.marks[mark] = max(until, self.marks.get(mark, 0.0))

    def banned(self, marks: Iterable[str]) -> bool:
        return any(mark in self.marks for mark in marks)

    def pardon(self, marks: Iterable[str]) -> None:
        for mark in marks:
            self.marks.pop(mark, None)

    def purge(self, now: float) -> None:
        for mark in [m for m, until in self.marks.items() if until <= now]:
            del self.marks[mark]


def removal_until(event: str, early: dt.timedelta, grace: dt.timedelta) -> float:
    """When a removal made now lapses: the occurrence's end plus the grace, else 12 h.

    While the room is live its removals hold whatever this says (RoomManager)."""
    now = dt.datetime.now(dt.UTC)
    try:
        win = schedule.window(event, now, early, grace)
    except Exception:  # an unreadable event: the fallback
        win = None
    if win is not None and win.state == "open" and win.end is not None:
        return max((win.end + grace).timestamp(), time.time() + 3600)
    return time.time() + REMOVAL_FALLBACK


class Cooldowns:
    """(room, key) -> monotonic time the key may knock again; bounded."""

    def __init__(self) -> None:
        self.until: dict[tuple[str, str], float] = {}

    def start(self, room_id: str, keys: Iterable[str], until: float, now: float) -> None:
        for key in keys:
            self.until[(room_id, key)] = until
        if len(self.until) > MAX_COOLDOWNS:
            for k in [k for k, t in self.until.items() if t <= now]:
                del self.until[k]
            while len(self.until) > MAX_COOLDOWNS:
                del self.until[next(iter(self.until))]

    def remaining(self, room_id: str, keys: Iterable[str], now: float) -> float:
        left = 0.0
        for key in keys:
            until = self.until.get((room_id, key))
            if until is None:
                continue
            if until <= now:
                del self.until[(room_id, key)]
            else:
                left = max(left, until - now)
        return left
