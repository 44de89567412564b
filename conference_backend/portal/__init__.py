"""The booking portal: the seed's web portal, on top of CalDAV (issue 6).

Everything it writes goes through the CalDAV server as the signed-in user, so
the plugin, the rights and the scheduling are exactly those of calendar apps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from conference_backend import keys
from conference_backend.portal import calendar_views, recordings_page, reset, routes, session
from conference_backend.portal.caldav_client import CalDav
from visio_core.agenda import Agenda
from visio_core.settings import Settings
from visio_core.tokens import load_or_create_key


def setup(app: web.Application, settings: Settings) -> None:
    """Register the portal (it serves "/"); call before the app starts."""
    key = load_or_create_key(settings.key_path)
    portal = session.Portal(
        settings=settings,
        key=key,
        accounts=lambda: app[keys.ACCOUNTS],
        agenda=lambda: Agenda(app[keys.DB]),
    )
    app[session.PORTAL] = portal
    session.install(app, key, secure=settings.public_url.startswith("https://"))

    async def client(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as http:
            portal.caldav = CalDav(http, settings.caldav_url, key)
            yield
            portal.caldav = None

    app.cleanup_ctx.append(client)
    routes.setup(app)
    calendar_views.setup(app)
    reset.setup(app)
    recordings_page.setup(app)
