"""Which cores each process of a bench may run on (sched_setaffinity, as `taskset -a -p`).

bench/workers.py runs the backend and its synthetic clients on one machine. Left
to the scheduler, the clients take CPU from whichever core a worker runs on, and
a phase then measures the clients as much as the workers. Where the machine has
a core to spare, the media workers get cores of their own and the front and the
clients share the rest; where it has not (as many workers as cores), each worker
still gets its own core and the clients run wherever there is room, which the
bench measures and says.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Layout:
    workers: list[frozenset[int]]  # the cores of worker-1, worker-2, ...
    rest: frozenset[int]  # the front's and the clients' cores

    @property
    def clients_apart(self) -> bool:
        """No core of a worker is also the clients'."""
        return not any(w & self.rest for w in self.workers)

    def describe(self) -> str:
        def cores(s: frozenset[int]) -> str:
            return ",".join(map(str, sorted(s)))

        if not self.workers:
            return "not pinned"
        workers = "; ".join(
            f"worker-{i + 1} on core {cores(w)}" for i, w in enumerate(self.workers)
        )
        share = "" if self.clients_apart else " (shared with the workers: no core left)"
        return f"{workers}; front and clients on core {cores(self.rest)}{share}"


def layout(workers: int, cpus: frozenset[int] | None = None) -> Layout:
    """A core per worker; the rest for the front and the clients (all, if none is left)."""
    cpus = cpus if cpus is not None else frozenset(os.sched_getaffinity(0))
    order = sorted(cpus)
    own = [frozenset({order[i % len(order)]}) for i in range(workers)]
    rest = cpus - frozenset().union(*own)
    return Layout(own, rest or cpus)


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Every thread of `pid` (threads started later inherit their creator's cores);
    nothing if it has ended already (a client process that failed: the bench says why)."""
    with contextlib.suppress(OSError):
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        for task in tasks:
            with contextlib.suppress(OSError):  # a thread that just ended
                os.sched_setaffinity(int(task.name), cpus)


def socket_drops(pid: int) -> dict[str, int]:
    """inode -> packets the kernel dropped at that UDP socket of `pid` (/proc/net/udp*)."""
    drops = {}
    for name in ("udp", "udp6"):
        for line in (Path("/proc/net") / name).read_text().splitlines()[1:]:
            f = line.split()
            drops[f[9]] = int(f[-1])
    held = {}
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            link = os.readlink(fd)
            if link.startswith("socket:[") and link[8:-1] in drops:
                held[link[8:-1]] = drops[link[8:-1]]
    return held


def dropped(before: dict[str, int], after: dict[str, int]) -> int:
    """Drops between two socket_drops() readings; a socket closed meanwhile is not
    subtracted (a sum over the sockets held each time would be)."""
    return sum(n - before.get(inode, 0) for inode, n in after.items())


def busy() -> dict[int, tuple[int, int]]:
    """core -> (busy, total) jiffies, from /proc/stat."""
    out = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(v) for v in fields]
            idle = values[3] + values[4]  # idle + iowait
            out[int(name[3:])] = (sum(values) - idle, sum(values))
    return out


def busy_share(
    before: dict[int, tuple[int, int]], after: dict[int, tuple[int, int]]
) -> dict[int, float]:
    """core -> % busy between two readings of busy() (everyone's work, other jobs too)."""
    return {
        core: 100 * (after[core][0] - b) / max(1, after[core][1] - t)
        for core, (b, t) in before.items()
        if core in after
    }
