"""The gateway's lifetime inside the front: started only when VISIO_SIP_LISTEN is set.

The gateway keeps the lines here; the rooms it calls into live in the media
workers, reached through the pool's Unix sockets (`WorkerRooms`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import aiohttp
from aiohttp import web

from conference_backend import keys
from conference_backend.phone.gateway import PhoneGateway
from conference_backend.phone.remote import RoomSocket
from conference_backend.proxy import WORKERS
from conference_backend.workers import WorkerPool
from visio_core import phone_wire as wire
from visio_core.placement import LocalPlacement
from visio_core.settings import Settings


class WorkerRooms:
    """The live rooms as the gateway sees them: the placement's reports, the workers' sockets."""

    def __init__(self, pool: WorkerPool, placement: LocalPlacement) -> None:
        self.pool = pool
        self.placement = placement

    async def people(self, room_id: str) -> int:
        return await self.placement.people(room_id)

    async def connect(self, room_id: str) -> RoomSocket | None:
        worker = await self.pool.worker_for(room_id)
        if worker is None:
            return None
        url = "http://worker" + wire.PATH.format(room_id=quote(room_id, safe=""))
        try:
            ws = await self.pool.session(worker).ws_connect(
                url, heartbeat=wire.HEARTBEAT, max_msg_size=wire.MAX_MESSAGE
            )
        except (aiohttp.ClientError, OSError, KeyError):  # KeyError: no session, it just died
            return None
        return RoomSocket(ws, worker.name)


def setup(app: web.Application, settings: Settings) -> None:
    if not settings.sip_listen:
        return

    async def gateway(app: web.Application) -> AsyncIterator[None]:
        rooms = WorkerRooms(app[WORKERS], app[keys.PLACEMENT])
        phone = PhoneGateway(settings, app[keys.REGISTRY], rooms)
        app[keys.PHONE] = phone
        await phone.start()
        yield
        await phone.stop()

    app.cleanup_ctx.append(gateway)
