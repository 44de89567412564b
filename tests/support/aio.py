"""Running a coroutine from a synchronous test, whatever else the test session runs.

Playwright's sync API keeps an event loop running in the main thread for the
whole session once a browser fixture has started, so `asyncio.run` there fails
depending on which tests ran before. A thread of its own has no loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as e:  # handed back to the test as it is
            box["error"] = e

    thread = threading.Thread(target=target, name="test-asyncio")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
