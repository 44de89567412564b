"""The aiohttp application: routes, templates and the resources' lifetimes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from conference_backend import keys, portal, recorder
from conference_backend.headers import security_headers
from conference_backend.i18n import PAGES, request_language
from conference_backend.identity import RoomLinks
from conference_backend.join import join_page
from conference_backend.phone import service as phone
from conference_backend.rooms import RoomManager
from conference_backend.sfu import passthrough
from conference_backend.signaling import room_socket
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.links import Links
from visio_core.registry import Registry
from visio_core.settings import Settings
from visio_core.tokens import load_or_create_key

HERE = Path(__file__).parent


async def home(request: web.Request) -> web.StreamResponse:
    lang = request_language(request)
    return aiohttp_jinja2.render_template(
        "home.html",
        request,
        {"lang": lang, "t": PAGES[lang], "caldav_url": request.app[keys.SETTINGS].caldav_url},
    )


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[security_headers])
    app[keys.SETTINGS] = settings

    async def database(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database_path)
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
        manager = RoomManager(app[keys.REGISTRY])
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
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    portal.setup(app, settings)  # the booking portal serves "/" (sign-in, home)
    recorder.setup(app, settings)  # after the rooms: it is cleaned up before them
    phone.setup(app, settings)  # the SIP gateway, with VISIO_SIP_LISTEN only
    app.router.add_get("/caldav", home)  # how to connect a calendar app (linked from the portal)
    app.router.add_get("/healthz", health)
    app.router.add_get("/j/{token}", join_page)
    app.router.add_get("/ws/{token}", room_socket)
    app.router.add_static("/static", HERE / "static")
    return app
