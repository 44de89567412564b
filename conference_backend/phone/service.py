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
from conference_backend.nodes import ROUTER, Router
from conference_backend.phone.gateway import PhoneGateway
from conference_backend.phone.remote import RoomSocket
from visio_core import phone_wire as wire
from visio_core.settings import Settings


class WorkerRooms:
    """The live rooms as the gateway sees them: on this node's workers or on another node."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def people(self, room_id: str) -> int:
        return await self.router.people(room_id)

    async def connect(self, room_id: str) -> RoomSocket | None:
        for attempt in (1, 2):  # again at once if the room's node was found gone
            target = await self.router.target(room_id)
            if target is None:
                return None
            url = target.base + wire.PATH.format(room_id=quote(room_id, safe=""))
            try:
                ws = await target.session.ws_connect(
                    url,
                    heartbeat=wire.HEARTBEAT,
                    max_msg_size=wire.MAX_MESSAGE,
                    headers=target.headers,
                )
            except (aiohttp.ClientError, OSError, KeyError):  # KeyError: no session, it just died
                if attempt == 1 and await self.router.unreachable(target):
                    continue
                return None
            return RoomSocket(ws, target.label)
        return None


def setup(app: web.Application, settings: Settings) -> None:
    if not settings.sip_listen:
        return

    async def gateway(app: web.Application) -> AsyncIterator[None]:
        rooms = WorkerRooms(app[ROUTER])
        phone = PhoneGateway(settings, app[keys.REGISTRY], rooms)
        app[keys.PHONE] = phone
        await phone.start()
        yield
        await phone.stop()

    app.cleanup_ctx.append(gateway)
