"""Where a room's signalling goes: this node's workers, or the node that hosts the room.

On one machine (no VISIO_REDIS_URL) every room is placed on this node's media
workers. With Redis, rooms are placed on nodes (visio_core/cluster.py) and this
node beats its load there every two seconds; a socket for a room hosted
elsewhere is relayed to that node's internal URL with a signed route word
(`X-Visio-Route`), and that node hands it to its own worker. Relaying, not
redirecting: the page keeps one origin and one public URL behind any reverse
proxy, and a node's internal address never has to be public.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from redis.exceptions import RedisError

from conference_backend.workers import WorkerPool
from visio_core.cluster import Node, NodeState, RedisCluster, RoomReport
from visio_core.identity import check_route, route_token
from visio_core.settings import Settings

log = logging.getLogger("visio.nodes")
ROUTE_HEADER = "X-Visio-Route"
LOCAL_BASE = "http://worker"  # a worker's Unix socket: the host part is not used
SILENT_FOR = 1.2  # beats: a node unreachable and this silent is taken for gone


@dataclass
class Target:
    """Where to open a room's path: one of our workers, or another node's front."""

    session: aiohttp.ClientSession
    base: str
    label: str  # "worker-2" or "node b"
    headers: dict[str, str] = field(default_factory=dict)
    node: str = ""  # another node's name; "" for one of our workers


class Router:
    def __init__(self, settings: Settings, pool: WorkerPool, key: bytes) -> None:
        self.settings = settings
        self.node = settings.node
        self.pool = pool
        self.key = key
        self.cluster = (
            RedisCluster(settings.node.redis_url, settings.node.name)
            if settings.node.clustered
            else None
        )
        self._session: aiohttp.ClientSession | None = None
        self._beats: asyncio.Task[None] | None = None
        self._stopped = False
        self._known: dict[str, str] = {}  # room -> node, last seen: used while Redis is away

    # lifetime ---------------------------------------------------------------------
    async def start(self) -> None:
        if self.cluster is None:
            return
        self._session = aiohttp.ClientSession(
            # One connection per relayed page for its whole meeting: no pool limit.
            connector=aiohttp.TCPConnector(limit=0),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=3),
        )
        self._beats = asyncio.create_task(self.cluster.run(self.report), name="node heartbeat")

    async def leave(self) -> None:
        """Before the workers drain: this node leaves the cluster, so that the pages they
        tell to rejoin are placed on the other nodes, not here again."""
        if self.cluster is None or self._stopped:
            return
        self._stopped = True
        if self._beats is not None:
            self._beats.cancel()
            await asyncio.gather(self._beats, return_exceptions=True)
        with contextlib.suppress(RedisError, OSError):
            await self.cluster.leave()

    async def close(self) -> None:
        await self.leave()
        if self.cluster is not None:
            await self.cluster.close()
        if self._session is not None:
            await self._session.close()

    def report(self) -> Node:
        """This node as the others see it: load summed over its serving workers."""
        placement = self.pool.placement
        workers = [w for w in placement.all_workers() if w.state == "serving"]
        state: NodeState
        if self.settings.media_workers == 0:
            state = "front"
        elif self.pool.stopping:
            state = "draining"
        else:
            state = "serving"
        rooms: dict[str, RoomReport] = {}
        for worker in workers:
            for room_id in worker.rooms:
                rooms[room_id] = RoomReport(
                    worker=worker.name, pid=worker.pid, participants=worker.people.get(room_id, 0)
                )
        return Node(
            name=self.node.name,
            url=self.node.internal_url,
            state=state,
            cores=len(workers),
            cpu=sum(w.cpu for w in workers),
            streams=sum(w.streams for w in workers),
            rooms=rooms,
            beat=time.time(),
        )

    # what the front asks -----------------------------------------------------------
    async def target(self, room_id: str, routed: bool = False) -> Target | None:
        """Where the room's sockets go, placing it if it is nowhere (None: nowhere to go now).

        `routed`: another node placed the room here; host it whatever Redis says now."""
        if self.cluster is None or routed:
            return await self._local(room_id)
        try:
            node = await self.cluster.place(room_id)
        except (RedisError, OSError) as e:
            # Rooms we hold go on; a room nobody can place now waits for Redis (the page
            # retries): placing it here could split its people over two nodes.
            log.warning("room %s: Redis unreachable (%s)", room_id, e)
            here = await self.pool.placement.where(room_id)
            if here is not None or self._known.get(room_id) == self.node.name:
                return await self._local(room_id)
            return None
        if node is None:
            return None
        self._known[room_id] = node.name
        if node.name == self.node.name:
            return await self._local(room_id)
        return self._remote(room_id, node)

    async def find(self, room_id: str) -> Target | None:
        """Where the room lives now, without placing it (None: not live anywhere)."""
        if self.cluster is not None:
            try:
                node = await self.cluster.where(room_id)
            except (RedisError, OSError):
                node = None
            if node is not None and node.name != self.node.name:
                return self._remote(room_id, node)
        worker = await self.pool.placement.where(room_id)
        if worker is None or worker.state != "serving":
            return None
        return Target(self.pool.session(worker), LOCAL_BASE, worker.name)

    async def people(self, room_id: str) -> int:
        """How many are inside the room now, wherever it lives."""
        if self.cluster is not None:
            with contextlib.suppress(RedisError, OSError):
                node = await self.cluster.where(room_id)
                if node is not None and node.name != self.node.name:
                    found = node.rooms.get(room_id)
                    return found["participants"] if found is not None else 0
        return await self.pool.placement.people(room_id)

    def routed(self, request: web.Request, room_id: str) -> bool:
        """True if another node handed this request over (raises 403 on a forged word)."""
        word = request.headers.get(ROUTE_HEADER)
        if word is None:
            return False
        if not check_route(self.key, room_id, self.node.name, word):
            raise web.HTTPForbidden(text="bad route")
        return True

    async def _local(self, room_id: str) -> Target | None:
        worker = await self.pool.worker_for(room_id)
        if worker is None:
            return None
        try:
            return Target(self.pool.session(worker), LOCAL_BASE, worker.name)
        except KeyError:  # it died between placement and now
            return None

    def _remote(self, room_id: str, node: Node) -> Target:
        assert self._session is not None
        word = route_token(self.key, room_id, node.name)
        return Target(self._session, node.url, f"node {node.name}", {ROUTE_HEADER: word}, node.name)

    async def unreachable(self, target: Target) -> bool:
        """We could not open a socket to another node. If it also stopped beating it is
        gone (a machine down): forget it now rather than when its key expires, waiting
        at most until it misses its next beat, so that this very join is placed again.
        A node that beats meanwhile is alive, only slow: the page retries.
        True if the node is gone from the cluster now (placing again makes sense)."""
        if self.cluster is None or not target.node:
            return False
        silent_for = SILENT_FOR * self.cluster.beat_every
        try:
            node = await self.cluster.node(target.node)
            if node is None:
                return True  # expired meanwhile
            wait = silent_for - (time.time() - node.beat)
            if wait > 0:
                await asyncio.sleep(wait + 0.05)
            if await self.cluster.forget(target.node, silent_for):
                return True
            return await self.cluster.node(target.node) is None
        except (RedisError, OSError):
            return False

ROUTER = web.AppKey("router", Router)
