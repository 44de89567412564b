"""`visio serve`: the CalDAV server (a child process) and the web backend, together.

Radicale's server is threaded and blocking; it runs in its own process so the
asyncio backend (and later the media plane) never shares a GIL with it. The
child is restarted with backoff if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import sys

from aiohttp import web

from conference_backend import rsvp
from conference_backend.app import create_app
from conference_backend.mailer import mailer_context
from visio_cli.ldap import ldap_sync_context
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.settings import Settings
from visio_core.tokens import load_or_create_key

log = logging.getLogger("visio.serve")
DEMO_LOGIN = "demo"


def _demo_account(settings: Settings) -> tuple[str, str] | None:
    """On an empty local store, a demo account whose password is kept under the data dir."""
    if settings.ldap_uri:
        return None
    accounts = Accounts(Database(settings.database))
    secret_file = settings.data_dir / "demo-password.txt"
    if accounts.list():
        if accounts.get(DEMO_LOGIN) and secret_file.exists():
            return DEMO_LOGIN, secret_file.read_text().strip()
        return None
    password = secrets.token_urlsafe(12)
    accounts.add(DEMO_LOGIN, "demo@localhost", "Demo", password)
    fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    return DEMO_LOGIN, password


async def _supervise_caldav(stop: asyncio.Event) -> None:
    delay = 1.0
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "visio_cli.main", "caldav", env=os.environ.copy()
        )
        waiter = asyncio.ensure_future(proc.wait())
        stopper = asyncio.ensure_future(stop.wait())
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stop.is_set():
            if proc.returncode is None:
                proc.terminate()
                try:
                    await asyncio.wait_for(proc.wait(), 10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
            waiter.cancel()
            return
        stopper.cancel()
        log.error(
            "the CalDAV server exited with code %s; restarting in %.0f s", proc.returncode, delay
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 30.0)


async def _run(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    caldav = asyncio.create_task(
        _supervise_caldav(stop) if settings.caldav_enabled else stop.wait()
    )
    app = create_app(settings)
    app.cleanup_ctx.append(mailer_context(settings))
    rsvp.setup(app, load_or_create_key(settings.key_path))
    if settings.ldap_uri and settings.ldap_sync_interval:
        app.cleanup_ctx.append(ldap_sync_context(settings))
    runner = web.AppRunner(app, access_log=None)
    try:
        # A failure while starting (port taken, bad setting) must stop the CalDAV
        # child too, or `visio serve` would hang instead of exiting with the error.
        await runner.setup()
        host, port = settings.web_listen
        await web.TCPSite(runner, host, port).start()
        log.info("web backend listening on %s", settings.web_url)
        await stop.wait()
    finally:
        stop.set()
        await caldav
        await runner.cleanup()


def serve(settings: Settings) -> int:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.mail_dir.mkdir(parents=True, exist_ok=True)
    load_or_create_key(settings.key_path)
    demo = _demo_account(settings)
    os.environ["VISIO_DATA_DIR"] = str(settings.data_dir)  # the child resolves the same dir
    print(
        f"CalDAV server: {settings.caldav_url}"
        if settings.caldav_enabled
        else "CalDAV server: none on this node (VISIO_CALDAV_LISTEN=off)",
        flush=True,
    )
    if settings.node.clustered:
        print(f"Node:          {settings.node.name} ({settings.node.internal_url})", flush=True)
        if not settings.database_url:
            print(
                "visio: VISIO_REDIS_URL without VISIO_DATABASE_URL: the other nodes will not"
                " know this node's links (set the same postgresql:// URL on every node)",
                file=sys.stderr,
                flush=True,
            )
    print(f"Web:           {settings.web_url}", flush=True)
    if demo:
        print(f"Demo login:    {demo[0]} / {demo[1]}", flush=True)
    print(
        f"Mail folder:   {settings.mail_dir}"
        if not settings.smtp_url
        else f"SMTP: {settings.smtp_url}",
        flush=True,
    )
    try:
        asyncio.run(_run(settings))
    except OSError as e:  # typically the web port is taken: say so, no traceback
        print(
            f"visio: cannot start the web backend on {settings.web_url}: {e.strerror or e}",
            file=sys.stderr,
        )
        return 1
    return 0
