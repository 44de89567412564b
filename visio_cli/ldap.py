"""`visio ldap-sync`, and the periodic sync that `visio serve` runs.

This is where the sync meets the CalDAV side: provisioning creates calendars
through the storage the CalDAV server is configured with, so the Radicale
configuration is built here (caldav_plugin.app) and handed to ldap_sync.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from ldap_sync.directory import Directory, DirectoryConfig, DirectoryError
from ldap_sync.lock import Holder, SyncLock, held
from ldap_sync.provision import Provisioner
from ldap_sync.store import SyncStore
from ldap_sync.sync import SyncCancelled, Syncer, SyncReport
from visio_core import settings as settings_mod
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.settings import Settings

log = logging.getLogger("visio.ldap.sync")
# How long `visio ldap-sync` waits for a running sync: a first full pass over a
# large directory (tens of thousands of people, with their calendars) takes minutes.
DEFAULT_MAX_WAIT = 1800.0


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


def _locked_run(
    lock: SyncLock,
    settings: Settings,
    sections: dict[str, dict[str, str]],
    db: Database,
    full: bool,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport:
    def noted(read: int) -> None:
        lock.note(read)  # what a waiting `visio ldap-sync` shows
        if progress is not None:
            progress(read)

    return build_syncer(settings, sections, db, noted, stop).run(full=full)


def sync_once(
    settings: Settings,
    sections: dict[str, dict[str, str]],
    db: Database,
    full: bool,
    progress: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> SyncReport | None:
    """One run under the sync lock; None when another run holds it (serve's schedule
    skips a turn rather than wait)."""
    with held(settings.data_dir, "visio serve") as lock:
        if lock is None:
            return None
        return _locked_run(lock, settings, sections, db, full, progress, stop)


def run(settings: Settings, sections: dict[str, dict[str, str]], args: argparse.Namespace) -> int:
    """`visio ldap-sync`: a full pass (a manual run always notices who left).

    If another sync is running (`visio serve`'s, say), it waits for it to end,
    then runs its own; `--no-wait` fails at once instead, as scripts may prefer.
    """
    if not settings.ldap_uri:
        print("visio ldap-sync: VISIO_LDAP_URI is not set (accounts are local)", file=sys.stderr)
        return 2
    tty = sys.stderr.isatty()
    no_wait = bool(getattr(args, "no_wait", False))
    asked = getattr(args, "max_wait", None)
    max_wait = DEFAULT_MAX_WAIT if asked is None else max(0.0, float(asked))
    waited: list[Holder | None] = []

    def progress(read: int) -> None:
        if tty:
            print(f"\r\033[K{read} entries read…", end="", file=sys.stderr, flush=True)

    def on_wait(holder: Holder | None) -> None:
        other = f" ({holder.describe()})" if holder else ""
        line = (
            f"visio ldap-sync: another sync is running{other}; "
            f"waiting for it to finish (at most {max_wait:.0f} s)…"
        )
        if tty:  # one line, kept up to date
            print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)
        elif not waited:
            print(line, file=sys.stderr, flush=True)
        waited.append(holder)

    db = Database(settings.database)
    try:
        with held(
            settings.data_dir, "visio ldap-sync", None if no_wait else max_wait, on_wait
        ) as lock:
            if tty and waited:
                print(file=sys.stderr)
            if lock is None:
                return _refused(no_wait, max_wait, waited[-1] if waited else None)
            if waited:
                print(
                    "visio ldap-sync: the other sync has finished; running this one",
                    file=sys.stderr,
                    flush=True,
                )
            report = _locked_run(lock, settings, sections, db, True, progress)
    except DirectoryError as e:
        if tty:
            print(file=sys.stderr)
        print(f"visio ldap-sync: {e}; no account was disabled", file=sys.stderr)
        return 1
    finally:
        db.close()
    if tty:
        print(file=sys.stderr)
    print(report.summary())
    return 0


def _refused(no_wait: bool, max_wait: float, last: Holder | None) -> int:
    if no_wait:
        print("visio ldap-sync: another sync is running; try again later", file=sys.stderr)
    else:
        other = f" ({last.describe()})" if last else ""
        print(
            f"visio ldap-sync: another sync is still running after {max_wait:.0f} s{other}; "
            "try again later, or wait longer with --max-wait SECONDS",
            file=sys.stderr,
        )
    return 1


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
    db = Database(settings.database)
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
