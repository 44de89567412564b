"""`visio db`: the database's schema version, and its upgrade.

SQLite databases upgrade themselves when opened; PostgreSQL, shared by several
machines, is upgraded by this command once, before the nodes of a new version
start (a node finding the schema behind refuses to start and names this command).
"""

from __future__ import annotations

import argparse

from visio_core.db import LATEST, Database, redact
from visio_core.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    where = redact(str(settings.database))
    if args.action == "version":
        db = Database(settings.database, upgrade=False)
        try:
            version = db.version()
        finally:
            db.close()
        state = "up to date" if version == LATEST else f"this program needs {LATEST}"
        print(f"{where}: schema version {version} ({state})")
        return 0 if version == LATEST else 1
    db = Database(settings.database, upgrade=False)
    try:
        before, after = db.upgrade()
    finally:
        db.close()
    if before == after:
        print(f"{where}: schema version {after}, nothing to do")
    else:
        print(f"{where}: schema upgraded from version {before} to {after}")
    return 0
