"""`visio recordings list|delete|purge`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys

from visio_cli.text import one_line
from visio_core.db import Database
from visio_core.recordings import Recordings, expired
from visio_core.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    store = Recordings(Database(settings.database))
    if args.action == "delete":
        status = 0
        for rec_id in args.ids:
            removed = store.delete(rec_id)
            if removed is None:
                print(f"visio: no recording {rec_id}", file=sys.stderr)
                status = 1
            else:
                print(f"deleted recording {rec_id} ({len(removed.segments)} file(s))")
        return status
    if args.action == "purge":
        gone = expired(store.all(), dt.datetime.now(dt.UTC), settings.recording_days)
        for rec in gone:
            store.delete(rec.id)
        print(f"{len(gone)} recording(s) older than {settings.recording_days} days deleted")
        return 0
    # One line per recording: id, state, owner, title, start, size, then its file(s).
    for rec in store.all():
        paths = " ".join(str(s.path) for s in rec.segments) or "-"
        fields = (
            str(rec.id),
            rec.state,
            rec.owner,
            rec.summary or "-",
            rec.started_at,
            str(rec.size),
            paths,
        )
        print("\t".join(one_line(f) for f in fields))
    return 0
