"""Recording and live streaming of meetings (see service.py for the lifecycle)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from conference_backend import keys
from conference_backend.recorder import control, download
from conference_backend.recorder.service import RecordingService
from visio_core.recordings import Recordings
from visio_core.settings import Settings

log = logging.getLogger("visio.recorder")
SERVICE = web.AppKey("recordings", RecordingService)


def setup(app: web.Application, settings: Settings) -> None:
    """Register the recorder; call after the rooms' cleanup context is added."""

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
    download.setup(app)
    control.setup(app, SERVICE)
