"""`python -m visio_rooms SOCKET NAME`: one media worker, started by `visio serve`.

It serves its rooms on the Unix socket SOCKET until SIGTERM (or SIGINT), then
tells its pages to come back (they rejoin wherever the room is placed next).
SIGUSR1 writes the stacks of its threads to its log (stderr).
"""

from __future__ import annotations

import asyncio
import faulthandler
import logging
import os
import signal
import sys

from aiohttp import web

from visio_core.settings import SettingsError, load
from visio_rooms.app import create_worker_app


async def _run(path: str) -> None:
    settings, _ = load(os.environ)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    runner = web.AppRunner(create_worker_app(settings), access_log=None)
    await runner.setup()
    parent = os.getppid()

    async def orphaned() -> None:
        # The front killed (kill -9) leaves no one to stop us: we go too.
        while os.getppid() == parent:
            await asyncio.sleep(1.0)
        stop.set()

    watch = asyncio.create_task(orphaned())
    try:
        await web.UnixSite(runner, path).start()
        await stop.wait()
    finally:
        watch.cancel()
        await runner.cleanup()


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m visio_rooms SOCKET NAME", file=sys.stderr)
        return 2
    path, name = argv
    # `kill -USR1 PID` prints every thread's stack to the log: what a stuck or slow
    # worker is doing, with nothing to install.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s"
    )
    try:
        asyncio.run(_run(path))
    except SettingsError as e:
        print(f"visio worker: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
