"""The front's aiohttp application: portal, join pages, and signalling handed to the
media workers that hold the live rooms (workers.py, proxy.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web

from conference_backend import keys, portal, recordings
from conference_backend.headers import security_headers
from conference_backend.i18n import PAGES, request_language
from conference_backend.join import join_page
from conference_backend.nodes import ROUTER, Router
from conference_backend.phone import service as phone
from conference_backend.proxy import SOCKETS, WORKERS, phone_socket, recording_control, room_socket
from conference_backend.workers import WorkerPool
from visio_core.accounts import Accounts
from visio_core.addresses import AddressSockets
from visio_core.db import Database
from visio_core.identity import RoomLinks
from visio_core.links import Links
from visio_core.phone_wire import PATH as PHONE_PATH
from visio_core.placement import SNAPSHOT_FILE, LocalPlacement
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
    """Ready once a media worker serves (before, a join would wait for one); a node
    without workers (VISIO_MEDIA_WORKERS=0) is ready at once: its rooms live elsewhere."""
    settings = request.app[keys.SETTINGS]
    serving = await request.app[WORKERS].serving()
    ready = bool(serving) or settings.media_workers == 0
    return web.json_response(
        {"status": "ok" if ready else "starting", "workers": serving, "node": settings.node.name},
        status=200 if ready else 503,
    )


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[security_headers])
    app[keys.SETTINGS] = settings
    app[SOCKETS] = AddressSockets()

    async def database(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database)
        app[keys.DB] = db
        app[keys.REGISTRY] = Registry(db)
        app[keys.ACCOUNTS] = Accounts(db)
        app[keys.SERVER_KEY] = load_or_create_key(settings.key_path)
        app[keys.LINKS] = RoomLinks(app[keys.REGISTRY], Links(db), app[keys.ACCOUNTS])
        yield
        db.close()

    async def workers(app: web.Application) -> AsyncIterator[None]:
        placement = LocalPlacement()
        app[keys.PLACEMENT] = placement
        pool = WorkerPool(settings.media_workers, placement, settings.data_dir / SNAPSHOT_FILE)
        app[WORKERS] = pool
        router = Router(settings, pool, app[keys.SERVER_KEY])
        app[ROUTER] = router
        await pool.start()
        await router.start()
        yield
        await router.leave()
        await pool.stop()
        await router.close()

    async def drain(app: web.Application) -> None:
        # Before aiohttp waits for open handlers: this node leaves the cluster, then the
        # workers tell their pages (which rejoin elsewhere) and exit, which closes every
        # relayed socket.
        await app[ROUTER].leave()
        await app[WORKERS].stop()

    app.cleanup_ctx.append(database)
    app.cleanup_ctx.append(workers)
    app.on_shutdown.append(drain)
    aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
    )
    portal.setup(app, settings)  # the booking portal serves "/" (sign-in, home)
    recordings.setup(app)  # the recordings' files; recording itself happens in the workers
    phone.setup(app, settings)  # the SIP gateway, with VISIO_SIP_LISTEN only
    app.router.add_get("/caldav", home)  # how to connect a calendar app (linked from the portal)
    app.router.add_get("/healthz", health)
    app.router.add_get("/j/{token}", join_page)
    app.router.add_get("/ws/{token}", room_socket)
    app.router.add_post("/recordings/control/{token}", recording_control)
    app.router.add_get(PHONE_PATH, phone_socket)  # from other nodes' gateways (route word)
    app.router.add_static("/static", HERE / "static")
    return app
