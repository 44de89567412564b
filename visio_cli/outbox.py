"""`visio outbox`: invitation messages not yet sent, and those that failed."""

from __future__ import annotations

import argparse

from visio_cli.text import one_line
from visio_core.db import Database
from visio_core.outbox import Outbox
from visio_core.settings import Settings


def run(settings: Settings, args: argparse.Namespace) -> int:
    outbox = Outbox(Database(settings.database))
    states = ("pending", "failed", "sent") if args.all else ("pending", "failed")
    rows = outbox.listing(states)
    if args.retry:
        outbox.retry_now()
        print("pending messages will be retried now")
    if not rows:
        print("outbox empty: every message has been sent")
        return 0
    for r in rows:
        print(
            "\t".join(
                one_line(str(v))
                for v in (
                    r.id,
                    r.state,
                    r.attempts,
                    r.method,
                    r.recipient,
                    r.uid,
                    r.created_at,
                    r.last_error or "-",
                )
            )
        )
    return 1 if any(r.state == "failed" for r in rows) else 0
