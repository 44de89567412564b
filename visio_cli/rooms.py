"""`visio rooms list|rebuild`."""

from __future__ import annotations

import argparse
import datetime as dt

from visio_cli.text import one_line
from visio_core import ical, when
from visio_core.db import Database
from visio_core.registry import Registry
from visio_core.settings import Settings


def run(settings: Settings, sections: dict[str, dict[str, str]], args: argparse.Namespace) -> int:
    if args.action == "rebuild":
        from caldav_plugin.rebuild import rebuild

        report: list[str] = []
        count = rebuild(settings, sections, report)
        print(f"registry rebuilt: {count} room(s)")
        for line in report:
            print(f"not taken: {line}")
        return 0
    registry = Registry(Database(settings.database_path))
    now = dt.datetime.now(dt.UTC)
    for room in registry.all():
        try:
            occ = when.next_occurrence(ical.parse(room.event), now)
            nxt = when.format_range(occ, settings.language) if occ else "-"
        except Exception as e:  # one unreadable event must not hide the others
            nxt = f"(unreadable: {e})"
        fields = (room.room_number, room.kind.value, room.owner, room.summary or "-", nxt)
        print("\t".join(one_line(f) for f in fields))
    return 0
