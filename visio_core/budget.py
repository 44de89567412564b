"""A CPU-time budget for a block of pure-Python work, enforced from outside it.

Some library loops cannot be bounded from their inputs: dateutil checks a rule's
UNTIL only on dates that pass its BY-filters, so a rule matching no date walks
to the year 9999 whatever UNTIL says. A watchdog thread measures the CPU time
of each thread inside a `cpu_budget` block (its own per-thread clock, so a
loaded machine does not shorten anyone's budget) and, past the budget, raises
the block's exception in that thread (PyThreadState_SetAsyncExc: delivered at
the next bytecode, which a pure-Python loop reaches at once). Blocks are
registered and left under one lock, and a pending exception for a block that
has already ended is withdrawn, so it never lands in unrelated code.
"""

from __future__ import annotations

import ctypes
import threading
import time
from types import TracebackType

_POLL = 0.02  # seconds between watchdog looks


class _Watch:
    __slots__ = ("clock", "deadline", "error", "fired")

    def __init__(self, clock: int, deadline: float, error: type[BaseException]) -> None:
        self.clock, self.deadline, self.error, self.fired = clock, deadline, error, False


_lock = threading.Lock()
_wake = threading.Condition(_lock)
_watched: dict[int, _Watch] = {}
_watchdog: threading.Thread | None = None


def _set_async(thread_id: int, error: type[BaseException] | None) -> None:
    ctypes.pythonapi.PyThreadState_SetAsyncExc(
        ctypes.c_ulong(thread_id), ctypes.py_object(error) if error else ctypes.c_void_p(0)
    )


def _watch() -> None:
    with _lock:
        while True:
            while not _watched:
                _wake.wait()
            for thread_id, watch in _watched.items():
                if watch.fired:
                    continue
                try:
                    used = time.clock_gettime(watch.clock)
                except OSError:  # the thread is gone
                    continue
                if used > watch.deadline:
                    watch.fired = True
                    _set_async(thread_id, watch.error)
            _wake.wait(_POLL)


class cpu_budget:
    """Raise `error` in this thread once the block has used `seconds` of its CPU time.

    A block inside another block of the same thread runs under the outer budget.
    """

    def __init__(self, seconds: float, error: type[BaseException]) -> None:
        self.seconds, self.error = seconds, error
        self._outer = False

    def __enter__(self) -> cpu_budget:
        global _watchdog
        thread_id = threading.get_ident()
        clock = time.pthread_getcpuclockid(thread_id)
        with _lock:
            if thread_id in _watched:
                self._outer = True
                return self
            _watched[thread_id] = _Watch(
                clock, time.clock_gettime(clock) + self.seconds, self.error
            )
            if _watchdog is None:
                _watchdog = threading.Thread(target=_watch, name="cpu-budget", daemon=True)
                _watchdog.start()
            _wake.notify()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._outer:
            return
        thread_id = threading.get_ident()
        with _lock:
            watch = _watched.pop(thread_id)
            if watch.fired and kind is None:
                _set_async(thread_id, None)  # not delivered inside the block: withdrawn
