"""Recording and live streaming of meetings (see service.py for the lifecycle)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from visio_core.recordings import Recordings
from visio_core.settings import Settings
from visio_rooms import keys
from visio_rooms.recorder import control
from visio_rooms.recorder.service import RecordingService

log = logging.getLogger("visio.recorder")
SERVICE = web.AppKey("recordings", RecordingService)


def setup_rooms(app: web.Application, settings: Settings) -> None:
    """In a media worker: record its rooms; call after the rooms' cleanup context."""

    async def recorder(app: web.Application) -> AsyncIterator[None]:
        closed = await asyncio.to_thread(Recordings(app[keys.DB]).close_abandoned)
        if closed:
            log.info("%d recording(s) left open by a stopped backend were closed", closed)
        service = RecordingService(settings, app[keys.DB], app[keys.ROOMS])
        app[SERVICE] = service
        task = asyncio.create_task(service.run(), name="recordings")
        yield
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await service.shutdown()

    async def stopping(app: web.Application) -> None:
        if SERVICE in app:
            app[SERVICE].stopping = True  # rooms empty on shutdown: no "meeting ended" mail

    app.on_shutdown.append(stopping)
    app.cleanup_ctx.append(recorder)
    control.setup(app, SERVICE)  # the front hands the request to the room's worker
