"""The gateway's lifetime inside the web backend: started only when VISIO_SIP_LISTEN is set."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from conference_backend import keys
from conference_backend.phone.gateway import PhoneGateway
from visio_core.settings import Settings


def setup(app: web.Application, settings: Settings) -> None:
    if not settings.sip_listen:
        return

    async def gateway(app: web.Application) -> AsyncIterator[None]:
        phone = PhoneGateway(settings, app[keys.REGISTRY], app[keys.ROOMS])
        app[keys.PHONE] = phone
        await phone.start()
        yield
        await phone.stop()

    app.cleanup_ctx.append(gateway)
