"""Three `visio serve` nodes on loopback sharing one Redis, one PostgreSQL and one key.

Node a runs the CalDAV server; b and c have VISIO_CALDAV_LISTEN=off and reach a's.
Each node has one media worker (the machine has two cores), its own ports and
data folder, and the recordings folder shared by all (as shared storage would be).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.database import fresh_url
from tests.support.redis import RedisServer
from tests.support.stack import Stack
from visio_core.cluster import Node, RedisCluster

NAMES = ("a", "b", "c")


@dataclass
class Cluster:
    redis: RedisServer
    nodes: dict[str, Stack]
    recordings: Path

    def through(self, link: str, name: str) -> str:
        """The same join link, answered by another node (as a load balancer would)."""
        path = link.split("/j/", 1)[1]
        return self.nodes[name].web_url + "j/" + path

    async def view(self) -> tuple[list[Node], dict[str, dict[str, object]]]:
        """The live nodes and where each live room is, as Redis has them."""
        reader = RedisCluster(self.redis.url, "test-reader")
        try:
            return await reader.nodes(), await reader.live_rooms()
        finally:
            await reader.close()

    async def host_of(self, room_id: str, participants: int | None = None) -> str:
        """The live node holding the room (with that many inside, if given), as Redis has
        it; polls until then (callers bound it with a timeout)."""
        while True:
            nodes, live = await self.view()
            room = live.get(room_id)
            counted = participants is None or (room or {}).get("participants") == participants
            if room and str(room["node"]) in {n.name for n in nodes} and counted:
                return str(room["node"])
            await asyncio.sleep(0.1)

    def alive(self) -> dict[str, Stack]:
        return {n: s for n, s in self.nodes.items() if s.proc and s.proc.poll() is None}


@contextmanager
def three_nodes(
    root: Path,
    postgres_url: str,
    redis_url: str = "",
    extra: Mapping[str, str] | None = None,
    per_node: Mapping[str, Mapping[str, str]] | None = None,
    names: Sequence[str] = NAMES,
) -> Iterator[Cluster]:
    """Start Redis (unless `redis_url`: e.g. a Unix socket inside a network namespace is
    then the caller's), the shared schema and the three nodes; stop them all at the end.
    `extra` goes to every node, `per_node[name]` to that node only (e.g. the SIP gateway
    on one node, where a PBX would send its calls). `names`: fewer nodes (bench/cluster.py's
    1- and 2-node phases); the first runs the CalDAV server."""
    redis = RedisServer(root / "redis").start()
    shared_db = fresh_url(postgres_url, "cluster_" + secrets.token_hex(4))
    key_file = root / "secret.key"
    key_file.write_bytes(secrets.token_bytes(32))
    recordings = root / "recordings"
    recordings.mkdir()
    nodes: dict[str, Stack] = {}
    try:
        for name in names:  # the first (a) runs CalDAV: the others reach its server
            env = {
                "VISIO_NODE_NAME": name,
                "VISIO_REDIS_URL": redis_url or redis.url,
                "VISIO_SECRET_KEY_FILE": str(key_file),
                "VISIO_RECORDINGS_DIR": str(recordings),
                "VISIO_MEDIA_WORKERS": "1",
                "VISIO_SOCKETS_PER_ADDRESS": "1000",
                **(extra or {}),
                **(per_node or {}).get(name, {}),
            }
            if nodes:
                env["VISIO_CALDAV_LISTEN"] = "off"
                env["VISIO_CALDAV_URL"] = nodes[names[0]].caldav_url
            nodes[name] = Stack(root / name, extra_env=env, shared_database=shared_db).start()
        yield Cluster(redis, nodes, recordings)
    finally:
        for stack in nodes.values():
            stack.stop()
        redis.stop()
