"""Keeping the agenda whole: calendars written before it existed, and series' windows.

Writes index themselves (storage.py). This pass, run by the CalDAV server in a
background thread at start and then daily, covers the rest: calendars not yet
indexed (data from before the agenda, or restored from a backup) and series
whose indexed window is running out. Each calendar is read under Radicale's
read lock, so no write slips between reading its files and marking it indexed;
until then the portal reads that calendar through CalDAV as before.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

from radicale import storage as radicale_storage

from caldav_plugin.homes import every_calendar
from visio_core import agenda, ical
from visio_core.agenda import Agenda
from visio_core.db import Database

log = logging.getLogger("visio.agenda")
REFRESH_MARGIN = dt.timedelta(days=300)  # re-expand a series when less than this is left
PERIOD_SECONDS = 24 * 3600


def index_item(item: Any, now: dt.datetime) -> agenda.Index | None:
    try:
        return agenda.index_of(ical.parse(item.serialize()), now)
    except ValueError:
        log.warning("cannot index %s: unreadable", item.href)
        return None


def _stale_series(db: Database, path: str, now: dt.datetime) -> list[str]:
    limit = agenda.instant(now + REFRESH_MARGIN)
    with db.reading() as conn:
        rows = conn.execute(
            "SELECT href FROM agenda_items WHERE calendar_path = ? AND recurring = 1"
            " AND covered_to < ?",
            (path, limit),
        ).fetchall()
    return [r["href"] for r in rows]


def index_calendars(
    storage: radicale_storage.BaseStorage, db: Database, everything: bool = False
) -> tuple[int, int]:
    """(calendars indexed, series refreshed). `everything`: index all calendars again."""
    now = dt.datetime.now(dt.UTC)
    indexed = refreshed = 0
    with storage.acquire_lock("r"):
        paths = [c.path for c in every_calendar(storage)]
    for path in paths:
        try:
            done = _index_one(storage, db, path, now, everything)
        except Exception:  # one unreadable calendar must not keep the others out
            log.exception("agenda: cannot index %s; the portal reads it through CalDAV", path)
            continue
        indexed += done[0]
        refreshed += done[1]
    return indexed, refreshed


def _index_one(
    storage: radicale_storage.BaseStorage,
    db: Database,
    path: str,
    now: dt.datetime,
    everything: bool,
) -> tuple[int, int]:
    with storage.acquire_lock("r"):
        calendar = next(iter(storage.discover(f"/{path}/")), None)
        if not isinstance(calendar, radicale_storage.BaseCollection):
            return 0, 0  # deleted meanwhile
        with db.reading() as conn:
            known = Agenda.is_indexed(conn, path)
        if everything or not known:
            items = [(item.href or "", index_item(item, now)) for item in calendar.get_all()]
            with db.transaction() as conn:
                Agenda.forget_under(conn, path)
                for href, index in items:
                    Agenda.put(conn, path, href, index)
                Agenda.indexed(conn, path)
            return 1, 0
        stale = _stale_series(db, path, now)
        if not stale:
            return 0, 0
        found = [(href, item) for href, item in calendar.get_multi(stale) if item is not None]
        with db.transaction() as conn:
            for href, item in found:
                Agenda.put(conn, path, href, index_item(item, now))
        return 0, len(found)


def keep_whole(storage: radicale_storage.BaseStorage, db: Database) -> threading.Thread:
    """Start the background pass (a daemon thread: it dies with the server)."""

    def run() -> None:
        while True:
            started = time.monotonic()
            try:
                indexed, refreshed = index_calendars(storage, db)
                if indexed or refreshed:
                    log.info(
                        "agenda: %d calendar(s) indexed, %d series extended in %.1f s",
                        indexed,
                        refreshed,
                        time.monotonic() - started,
                    )
            except Exception:  # the portal falls back to CalDAV; try again next period
                log.exception("agenda indexing failed")
            time.sleep(PERIOD_SECONDS)

    thread = threading.Thread(target=run, name="agenda index", daemon=True)
    thread.start()
    return thread
