"""A media worker's aiohttp application, served on a Unix socket only the front reaches."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator

from aiohttp import web

from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.identity import RoomLinks
from visio_core.links import Links
from visio_core.registry import Registry
from visio_core.settings import Settings
from visio_core.tokens import load_or_create_key
from visio_rooms import keys, phone_calls, recorder
from visio_rooms.rooms import RoomManager
from visio_rooms.sfu import passthrough
from visio_rooms.signaling import room_socket

log = logging.getLogger("visio.worker")


class CpuMeter:
    """This process's share of one core, smoothed over the last seconds so that one
    burst (starting up, a garbage collection) does not steer placement.

    Each reading weighs by the time it covers: the first poll after start-up, a
    tenth of a second after the reset, read 39 % on an idle worker (still warming
    up) and sent the next two rooms to the other worker."""

    TAU = 2.0  # s: the smoothing's time constant (a 1 s poll weighs 39 %)

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self._at = (time.monotonic(), time.process_time())
        self.share = 0.0

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        then_wall, then_cpu = self._at
        self._at = (wall, cpu)
        if wall > then_wall:
            latest = (cpu - then_cpu) / (wall - then_wall)
            weight = 1.0 - math.exp(-(wall - then_wall) / self.TAU)
            self.share += weight * (latest - self.share)
        return self.share


CPU = web.AppKey("cpu", CpuMeter)


def streams(manager: RoomManager) -> int:
    """Streams forwarded: one per sink (a subscriber's forwarder, a mix, a recorder)."""
    return sum(
        len(pub.sinks)
        for room in manager.rooms.values()
        for p in room.participants.values()
        for pub in p.publications.values()
    )


async def load(request: web.Request) -> web.Response:
    """What the supervisor polls: it is also how it knows the worker is alive."""
    manager = request.app[keys.ROOMS]
    return web.json_response(
        {
            "pid": os.getpid(),
            "cpu": round(request.app[CPU].read(), 3),
            "streams": streams(manager),
            "rooms": {
                room_id: len(room.participants)
                for room_id, room in manager.rooms.items()
                if not room.closed
            },
        }
    )


def create_worker_app(settings: Settings) -> web.Application:
    app = web.Application()
    app[keys.SETTINGS] = settings
    app[CPU] = CpuMeter()

    async def database(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database)
        app[keys.DB] = db
        app[keys.REGISTRY] = Registry(db)
        app[keys.ACCOUNTS] = Accounts(db)
        yield
        db.close()

    async def rooms(app: web.Application) -> AsyncIterator[None]:
        passthrough.install()  # process-wide: encoded forwarding, loopback ICE fallback
        # aioice logs every connectivity check at INFO: one line per candidate pair.
        logging.getLogger("aioice").setLevel(logging.WARNING)
        app[keys.SERVER_KEY] = load_or_create_key(settings.key_path)
        app[keys.LINKS] = RoomLinks(app[keys.REGISTRY], Links(app[keys.DB]), app[keys.ACCOUNTS])
        manager = RoomManager(app[keys.REGISTRY], settings.trust_bwe)
        app[keys.ROOMS] = manager
        watch = asyncio.create_task(manager.watch(), name="room watch")
        yield
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
        await manager.shutdown()

    async def hang_up(app: web.Application) -> None:
        # Before aiohttp waits for open handlers: sockets left open would hold shutdown.
        await app[keys.ROOMS].shutdown()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(rooms)
    app.on_shutdown.append(hang_up)
    recorder.setup_rooms(app, settings)  # after the rooms: it is cleaned up before them
    phone_calls.setup(app)  # the room half of phone calls, for the front's SIP gateway

    async def started(app: web.Application) -> None:
        app[CPU].reset()  # starting up is not load

    app.on_startup.append(started)
    app.router.add_get("/ws/{token}", room_socket)
    app.router.add_get("/internal/load", load)
    return app
