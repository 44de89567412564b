"""`visio ldap-sync`, and the periodic sync that `visio serve` runs.

This is where the sync meets the CalDAV side: provisioning creates calendars
through the storage the CalDAV server is configured with, so the Radicale
configuration is built here (caldav_plugin.app) and handed to ldap_sync.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from aiohttp import web

from ldap_sync.directory import Directory, DirectoryConfig, DirectoryError
from ldap_sync.provision import Provisioner
from ldap_sync.store import SyncStore
from ldap_sync.sync import SyncCancelled, Syncer, SyncReport
from visio_core import settings as settings_mod
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.settings import Settings

log = logging.getLogger("visio.ldap.sync")


def build_syncer(
    settings: Settings,
    sections: dict[str, dict[str, str]],
    db: Database,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> Syncer:
    from caldav_plugin.app import radicale_configuration

    syncer = Syncer(
        directory=Directory(DirectoryConfig.from_settings(settings)),
        accounts=Accounts(db),
        store=SyncStore(db),
        provisioner=Provisioner(radicale_configuration(settings, sections), settings.language),
        progress=progress,
    )
    if stop is not None:
        syncer.stop = stop
    return syncer


@contextlib.contextmanager
def _one_at_a_time(settings: Settings) -> Iterator[bool]:
    """True while this process holds the sync lock (a manual run during serve's, say)."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "ldap-sync.lock", "w") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def sync_once(
    settings: Settings,
    sections: dict[str, dict[str, str]],
    db: Database,
    full: bool,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport | None:
    """One run under the sync lock; None when another run holds it."""
    with _one_at_a_time(settings) as mine:
        if not mine:
            return None
        return build_syncer(settings, sections, db, progress, stop).run(full=full)


def run(settings: Settings, sections: dict[str, dict[str, str]], args: argparse.Namespace) -> int:
    """`visio ldap-sync`: a full pass (a manual run always notices who left)."""
    if not settings.ldap_uri:
        print("visio ldap-sync: VISIO_LDAP_URI is not set (accounts are local)", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()

    def progress(read: int) -> None:
        if tty:
            print(f"\r{read} entries read…", end="", file=sys.stderr, flush=True)

    db = Database(settings.database_path)
    try:
        report = sync_once(settings, sections, db, full=True, progress=progress)
    except DirectoryError as e:
        if tty:
            print(file=sys.stderr)
        print(f"visio ldap-sync: {e}; no account was disabled", file=sys.stderr)
        return 1
    finally:
        db.close()
    if tty:
        print(file=sys.stderr)
    if report is None:
        print("visio ldap-sync: another sync is running; try again later", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


def _scheduled(settings: Settings, db: Database, halt: threading.Event) -> None:
    """One periodic run, full when the last full pass is old enough; never raises."""
    since_full = SyncStore(db).seconds_since_full()
    full = since_full is None or since_full >= settings.ldap_full_sync_interval
    try:
        _, sections = settings_mod.load(os.environ)
        report = sync_once(settings, sections, db, full=full, stop=halt)
    except SyncCancelled:
        log.info("LDAP sync stopped for shutdown")
        return
    except DirectoryError as e:
        log.error(
            "LDAP sync failed: %s; accounts unchanged, next try in %d s",
            e,
            settings.ldap_sync_interval,
        )
        return
    except Exception:  # a bug must not end the periodic sync, nor serve
        log.exception("LDAP sync failed")
        return
    if report is None:
        log.info("LDAP sync skipped: another sync is running")
    else:
        log.info("LDAP %s", report.summary())


async def periodic(settings: Settings, stop: asyncio.Event) -> None:
    """Sync now, then every VISIO_LDAP_SYNC_INTERVAL seconds, until `stop` is set.

    The sync is blocking (ldap3, SQLite, files) and runs in a thread; on stop it
    is asked to end at its next page, and this waits for it so that shutdown
    never leaves a half-written batch behind.
    """
    halt = threading.Event()
    db = Database(settings.database_path)
    worker: asyncio.Future[None] | None = None
    try:
        while not stop.is_set():
            worker = asyncio.ensure_future(asyncio.to_thread(_scheduled, settings, db, halt))
            stopper = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({worker, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopper.cancel()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.ldap_sync_interval)
    finally:
        halt.set()
        if worker is not None and not worker.done():
            await asyncio.shield(worker)
        db.close()


def ldap_sync_context(
    settings: Settings,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """An aiohttp cleanup_ctx: the periodic sync runs while the web app does."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(periodic(settings, stop))
        yield
        stop.set()
        await task

    return context
