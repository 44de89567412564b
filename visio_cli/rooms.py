"""`visio rooms list|rebuild`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys

from redis.exceptions import RedisError

from visio_cli.text import one_line
from visio_core import ical, when
from visio_core.db import Database
from visio_core.placement import SNAPSHOT_FILE, read_snapshot
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
    registry = Registry(Database(settings.database))
    now = dt.datetime.now(dt.UTC)
    live = _live(settings)
    for room in registry.all():
        try:
            occ = when.next_occurrence(ical.parse(room.event), now)
            nxt = when.format_range(occ, settings.language) if occ else "-"
        except Exception as e:  # one unreadable event must not hide the others
            nxt = f"(unreadable: {e})"
        fields = (
            room.room_number,
            room.kind.value,
            room.owner,
            room.summary or "-",
            nxt,
            _where(live.get(room.room_id)),
        )
        print("\t".join(one_line(f) for f in fields))
    return 0


def _live(settings: Settings) -> dict[str, dict[str, object]]:
    """Where each live room is: every node's last beat in Redis, else this node's file
    (written every second by the running `visio serve`, conference_backend/workers.py)."""
    if settings.node.clustered:
        from visio_core.cluster import RedisCluster

        async def ask() -> dict[str, dict[str, object]]:
            cluster = RedisCluster(settings.node.redis_url, settings.node.name)
            try:
                return await cluster.live_rooms()
            finally:
                await cluster.close()

        try:
            return asyncio.run(ask())
        except (RedisError, OSError) as e:
            print(f"visio: Redis unreachable ({e}): live rooms of this node only", file=sys.stderr)
    return read_snapshot(settings.data_dir / SNAPSHOT_FILE)


def _where(place: dict[str, object] | None) -> str:
    """ "live on node/worker-2 (pid 1234), 3 people", or "-" for a room not held now."""
    if not place:
        return "-"
    people = place.get("participants", 0)
    return (
        f"live on {place.get('node', '?')}/{place.get('worker', '?')} "
        f"(pid {place.get('pid', '?')}), {people} people"
    )
