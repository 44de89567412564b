"""bench/workers.py's figures: one phase (a stack with N workers, its rooms) and how it prints."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bench.meeting import TARGET_CPU, Run, med_min
from bench.sfu_clip import FPS, LOW_FPS

TARGET_RATIO = 1.7
FULL = 0.9  # a slot at >= 90 % of its source's frame rate is at full rate
ROOMS = "AB"
BURST = "frame rates above the sources'"  # bench/meeting.Run.limits
MACHINE_FULL = "no idle CPU left on the machine"  # bench/meeting.Run.limits
DROPS = "packets dropped at their sockets"  # bench/meeting.Run.limits
OTHERS = 20.0  # % of a core used by other jobs past which a phase is flagged


def full_rate(run: Run) -> int:
    """Receiver slots at full rate (measure() lists a slot that got nothing as 0)."""
    return sum(f >= FULL * FPS for f in run.main_fps) + sum(
        f >= FULL * LOW_FPS for f in run.tile_fps
    )


@dataclass
class Phase:
    workers: int
    size: int
    rooms: list[Run] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)  # process -> % of a core
    drops: dict[str, int] = field(default_factory=dict)  # process -> UDP packets dropped
    placed: list[tuple[str, str, int]] = field(default_factory=list)  # room, worker, pid
    machine: float = 0.0
    load: float = 0.0  # load average (1 min) before the phase
    lean: bool = True  # bench/lean_receive.py receivers
    filled: float = 0.0  # s from the first client process started to all in and publishing
    failed: str = ""  # why the phase could not be measured
    out: list[str] = field(default_factory=list)  # client processes that never got in
    cores: dict[int, float] = field(default_factory=dict)  # core -> % busy (everyone's)
    pinning: str = ""  # which cores the workers, the front and the clients ran on
    rest: frozenset[int] = frozenset()  # the front's and the clients' cores
    apart: bool = False  # no worker shares a core with the clients

    @property
    def full(self) -> int:
        return sum(map(full_rate, self.rooms))

    @property
    def expected(self) -> int:
        return sum(r.expected for r in self.rooms)

    @property
    def received(self) -> int:
        return sum(r.streams for r in self.rooms)

    @property
    def clients(self) -> list[float]:
        return [c for r in self.rooms for c in r.clients]

    @property
    def workers_cpu(self) -> float:
        return sum(v for k, v in self.cpu.items() if k.startswith("worker"))

    def limits(self) -> list[str]:
        found = list(dict.fromkeys(x for r in self.rooms for x in r.limits() if DROPS not in x))
        drops = sum(r.client_drops for r in self.rooms)
        if drops > 0:  # one figure for the phase, not one per room
            found.append(f"{drops} packets dropped at their sockets")
        if self.apart:  # the workers' cores are busy by design: judge the clients' own
            found = [x for x in found if x != MACHINE_FULL]
            if any(self.cores.get(c, 0.0) > 95 for c in self.rest):
                found.append("no idle CPU left on the clients' core")
        if self.lean:  # they count at the socket, 50 ms late at most: a burst is the sender's
            return [x for x in found if x != BURST]
        return found

    def bursts(self) -> bool:
        return any(BURST in r.limits() for r in self.rooms)

    def holds(self) -> bool:
        """Calibration: one worker forwards every stream at full rate, with margin. (Busy
        clients or machine do not matter when every stream made it anyway.)"""
        busiest = max((v for k, v in self.cpu.items() if k.startswith("worker")), default=0.0)
        return (
            self.full >= self.expected
            and busiest <= TARGET_CPU
            and sum(v for k, v in self.drops.items() if k != "front") == 0
        )

    @property
    def others(self) -> float:
        """% of a core used by other jobs on the machine during the window."""
        ours = sum(self.cpu.values()) + sum(self.clients)
        return max(0.0, self.machine * (os.cpu_count() or 1) - ours)


def flags(phase: Phase) -> str:
    out = []
    if phase.limits():
        out.append("LIMITED BY THE CLIENTS (" + ", ".join(phase.limits()) + ")")
    if phase.lean and phase.bursts():
        out.append("frame rates above the sources' (the worker sent a backlog in bursts)")
    dropped = {k: v for k, v in phase.drops.items() if v}
    if dropped:
        out.append("backend sockets dropped " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    r = phase.rooms[0] if phase.rooms else None
    if r is not None and r.gave_up:
        out.append(f"server gave up {r.gave_up} renegotiations")
    if r is not None and r.problems:
        out.append(f"server logged {r.problems} warnings/errors (--log)")
    if phase.others > OTHERS:
        out.append(f"OTHER JOBS took {phase.others:.0f}% of a core (the figures are theirs too)")
    if phase.out:
        out.append("NEVER GOT IN (counted as served nothing): " + "; ".join(phase.out))
    unsettled = sum(x.size - x.settled for x in phase.rooms)
    if unsettled:
        out.append(f"{unsettled} participants never settled")
    lost = sum(sum(x.lost) for x in phase.rooms)
    if lost:
        out.append(f"{lost} connections lost")
    return "; ".join(out)


def show(phase: Phase, label: str = "") -> None:
    for i, r in enumerate(phase.rooms):
        print(
            f"{label or phase.workers:>7} {ROOMS[i]:>4} {phase.size:3}"
            f" {r.streams:5}/{r.expected:<5} {full_rate(r):5}"
            f" {med_min(r.main_fps):>10} {med_min(r.tile_fps):>10}"
            f" {sum(r.clients):5.0f}% {r.lag * 1000:4.0f}",
            flush=True,
        )
    placed = ", ".join(f"room {r[:8]} on {w} (pid {p})" for r, w, p in phase.placed)
    print(f"{'':>7} placed (serve log): {placed or 'none logged'}", flush=True)
    cpu = ", ".join(f"{k} {v:.1f}%" for k, v in phase.cpu.items())
    per = " ".join(f"{c:.0f}" for c in phase.clients)
    print(
        f"{'':>7} backend: {cpu}; clients {sum(phase.clients):.0f}% [{per}];"
        f" machine {phase.machine:.0f}% busy of {os.cpu_count()} cores, other jobs"
        f" {phase.others:.0f}% of a core;"
        f" load before {phase.load:.1f}; all in after {phase.filled:.0f} s",
        flush=True,
    )
    busy = ", ".join(f"{core} {share:.0f}%" for core, share in sorted(phase.cores.items()))
    print(f"{'':>7} cores busy: {busy} ({phase.pinning})", flush=True)
    note = flags(phase)
    if note:
        print(f"{'':>7} {note}", flush=True)


HEADER = (
    "workers room   P  streams     full  main fps   thumb fps  clients lag\n"
    "                  got/expect  rate  med/min    med/min     %cpu   ms"
)


def chosen(cal: Phase) -> None:
    """What two rooms of the calibrated size should need, from the one-room figures."""
    total = 100 * (os.cpu_count() or 1)
    need = 2 * (cal.workers_cpu + sum(cal.clients) + cal.cpu.get("front", 0))
    print(
        f"size: {cal.size} per room: alone it took {cal.workers_cpu:.0f}% of a core on its"
        f" worker, {sum(cal.clients):.0f}% for its clients; two such rooms: about"
        f" {2 * cal.workers_cpu:.0f}% of worker CPU (one worker has 100%), {need:.0f}% in all"
        f" of the machine's {total}%",
        flush=True,
    )
    if need > 0.95 * total:
        print(
            f"NOTE: that is more than this machine has: the clients' {2 * sum(cal.clients):.0f}%"
            " leave the two workers less than they need, whatever they do",
            flush=True,
        )
    if 2 * cal.workers_cpu < 100:
        print(
            "NOTE: two such rooms may fit in one worker (no gain to expect); larger sizes"
            " in --calibrate load it more, if the clients leave the machine room",
            flush=True,
        )


def fps(phase: Phase) -> float:
    """Video frames per second the receivers got, all slots together."""
    return sum(sum(r.main_fps) + sum(r.tile_fps) for r in phase.rooms)


def verdict(one: Phase, two: Phase) -> None:
    print()
    for p in (one, two):
        if p.failed:
            print(f"{p.workers} worker(s): NOT MEASURED: {p.failed}")
            continue
        got = max(1, p.received)
        print(
            f"{p.workers} worker(s): {p.full}/{p.expected} streams at full rate, {p.received}"
            f" receiving anything, {fps(p):.0f} frames/s in all; workers {p.workers_cpu:.0f}%"
            f" of a core ({100 * p.workers_cpu / got:.1f}% per 100 streams), clients"
            f" {sum(p.clients):.0f}% ({100 * sum(p.clients) / got:.1f}% per 100 streams),"
            f" machine {p.machine:.0f}% busy"
        )
    if one.failed or two.failed:
        print(
            f"no ratio: with {' and '.join(str(p.workers) for p in (one, two) if p.failed)}"
            f" worker(s) the two rooms of {one.size} could not be served, so nothing was"
            " measured there (not a pass of the target either: --size smaller compares two"
            " served phases)"
        )
        print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
        return
    spread = {w for _, w, _ in two.placed[: len(two.rooms)]}
    if len(spread) < len(two.rooms):
        print(f"PLACEMENT: with 2 workers the rooms went to {sorted(spread) or '?'}, not apart")
    limited = [p for p in (one, two) if p.limits()]
    reached = two.full > 0 and two.full >= TARGET_RATIO * one.full
    # A ratio from a phase the clients limited is no evidence either way.
    result = ("NOT SHOWN (clients limited)" if limited else "MET") if reached else "NOT MET"
    ratio = f"{two.full / one.full:.2f}x" if one.full else "no finite ratio (none with 1)"
    frames = f"{fps(two) / fps(one):.2f}x" if fps(one) else "n/a (none with 1)"
    print(
        f"streams at full rate, 2 workers / 1 worker: {two.full}/{one.full} = {ratio}"
        f" (target >= {TARGET_RATIO}x): {result}; frames/s in all: {frames}"
    )
    if one.full < 0.5 * one.expected and one.received >= 0.9 * one.expected:
        print(
            "NOTE: with 1 worker most streams still came, below 90 % of their rate (an"
            " overloaded worker degrades every stream): the frames/s ratio and the capacity"
            " comparison below say more than the count of streams at full rate"
        )
    for p in limited:
        print(f"with {p.workers} worker(s) the clients were LIMITED: {', '.join(p.limits())}")
    if not limited:
        print("clients: not limiting in either phase (CPU, loop lag, socket drops, machine idle)")
    if two.full < two.expected:
        total = 100 * (os.cpu_count() or 1)
        others = sum(two.clients) + two.cpu.get("front", 0)
        print(
            f"with 2 workers {two.expected - two.full} streams were below full rate; the"
            f" clients and the front used {others:.0f}% of the machine's {total}%, leaving"
            f" the workers at most {total - others:.0f}% (they used {two.workers_cpu:.0f}%,"
            f" machine {two.machine:.0f}% busy, other jobs included)"
        )
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")


def capacities(cal: Phase, held: Phase | None) -> None:
    """Capacity: the largest load each node size held with every stream at full rate."""
    total = 100 * (os.cpu_count() or 1)
    print()
    print(
        "capacity (largest load held: every stream at >= 90 % of its source's frame rate,"
        f" no worker over {TARGET_CPU} % of its core, nothing dropped at a worker's sockets):"
    )
    print(
        f"  1 worker: one room of {cal.size}: {cal.full} streams; worker"
        f" {cal.workers_cpu:.0f}% of its core; clients {sum(cal.clients):.0f}% on their own core"
        f" (cores busy {', '.join(f'{c} {v:.0f}%' for c, v in sorted(cal.cores.items()))}),"
        f" loop lag {max((r.lag for r in cal.rooms), default=0) * 1000:.0f} ms,"
        f" {sum(r.client_drops for r in cal.rooms)} packets dropped at their sockets"
    )
    if held is None:
        print("  2 workers: no size tried was held")
    else:
        cpu = ", ".join(f"{k} {v:.0f}%" for k, v in held.cpu.items())
        print(
            f"  2 workers: two rooms of {held.size}: {held.full} streams; {cpu};"
            f" clients {sum(held.clients):.0f}% on the same cores; other jobs {held.others:.0f}%"
        )
    ratio = (held.full if held else 0) / max(1, cal.full)
    result = "MET" if ratio >= TARGET_RATIO else "NOT MET"
    print(f"  capacity, 2 workers / 1 worker: {ratio:.2f}x (target >= {TARGET_RATIO}x): {result}")
    # What the machine allows at the costs of a load held at full rate (an overloaded
    # phase's streams are cheaper: they carry fewer frames).
    ref = held if held is not None else cal
    got = max(1, ref.received)
    w, c = 100 * ref.workers_cpu / got, 100 * sum(ref.clients) / got
    f = 100 * ref.cpu.get("front", 0.0) / got
    room = total - ref.others
    bound, alone = 100 * room / (w + c + f), 100 * total / w
    print(
        f"  why: per 100 streams the workers spent {w:.1f}% of a core, the clients {c:.1f}%,"
        f" the front {f:.1f}% ({len(ref.rooms)} room(s) of {ref.size}, {ref.workers}"
        f" worker(s), all at full rate); other jobs took"
        f" {ref.others:.0f}% of the {total}%. With the clients on the same cores the machine"
        f" forwards at most ~{bound:.0f} streams = {bound / max(1, cal.full):.2f}x one worker's"
        f" capacity; the workers alone, with the clients elsewhere, ~{alone:.0f} ="
        f" {alone / max(1, cal.full):.2f}x"
    )
