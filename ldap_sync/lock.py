"""One directory sync at a time per data directory, across processes.

An flock on $VISIO_DATA_DIR/ldap-sync.lock: the kernel releases it however its
holder ends, so a crashed sync never blocks the next one. The holder keeps a
one-line note in the file (who, since when, entries read so far) so that a
`visio ldap-sync` waiting for it can say what it is waiting for.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = "ldap-sync.lock"
POLL_SECONDS = 0.25
NOTE_BYTES = 256


@dataclass(frozen=True)
class Holder:
    """What the running sync wrote about itself."""

    by: str
    pid: int
    started: float
    read: int

    def describe(self, now: float | None = None) -> str:
        elapsed = max(0, int((now if now is not None else time.time()) - self.started))
        return f"{self.by}, pid {self.pid}, {self.read} entries read in {elapsed} s"


class SyncLock:
    """The lock of one data directory, as seen by one would-be holder."""

    def __init__(self, data_dir: Path, by: str) -> None:
        self.path = data_dir / LOCK_NAME
        self.by = by
        self._fd: int | None = None
        self._started = 0.0

    def try_acquire(self) -> bool:
        data_dir = self.path.parent
        data_dir.mkdir(parents=True, exist_ok=True)
        # Never O_TRUNC: opening must not wipe the holder's note.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self._started = time.time()
        self.note(0)
        return True

    def wait(
        self,
        max_seconds: float,
        on_wait: Callable[[Holder | None], None] | None = None,
        poll: float = POLL_SECONDS,
    ) -> bool:
        """Acquire, waiting up to `max_seconds` for the current holder; False on timeout.

        Polls rather than blocking in flock so that the wait has a limit and the
        caller can show the other sync's progress (`on_wait`, at each change).
        """
        deadline = time.monotonic() + max_seconds
        shown: Holder | None = None
        first = True
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                return False
            current = self.holder() or shown  # unreadable for an instant: keep the last
            if on_wait is not None and (first or current != shown):
                on_wait(current)
            first, shown = False, current
            time.sleep(poll)
        return True

    def note(self, read: int) -> None:
        """The holder's progress, for whoever waits (a few bytes rewritten per page)."""
        if self._fd is None:
            return
        line = json.dumps(
            {"by": self.by[:100], "pid": os.getpid(), "started": self._started, "read": read}
        )
        # Fixed width, written in one call at offset 0: a reader never sees it half
        # shortened (JSON ignores the trailing spaces).
        os.pwrite(self._fd, line.ljust(NOTE_BYTES - 1).encode()[: NOTE_BYTES - 1] + b"\n", 0)

    def holder(self) -> Holder | None:
        """The running sync's note; None if unreadable (being rewritten, or from an old
        version that wrote none)."""
        try:
            data = json.loads(self.path.read_text())
            return Holder(
                str(data["by"]), int(data["pid"]), float(data["started"]), int(data["read"])
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no stale note for the next waiter
        os.close(fd)  # closing releases the flock


@contextlib.contextmanager
def held(
    data_dir: Path,
    by: str,
    max_wait: float | None = None,
    on_wait: Callable[[Holder | None], None] | None = None,
) -> Iterator[SyncLock | None]:
    """The lock while the block runs, or None if another sync holds it (after waiting
    up to `max_wait` seconds when given)."""
    lock = SyncLock(data_dir, by)
    got = lock.try_acquire() if max_wait is None else lock.wait(max_wait, on_wait)
    if not got:
        yield None
        return
    try:
        yield lock
    finally:
        lock.release()
