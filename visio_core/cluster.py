"""Where each live room runs across nodes: the placement of rooms on nodes, in Redis.

Two levels (notes/cluster_design.md): this module puts a room on one NODE; that
node's front then puts it on one of its media workers (visio_core/placement.py).
Redis holds only node-level facts, as LiveKit's room -> node map does:

- `{prefix}node:{name}`: the node's JSON (`Node`), rewritten by each beat with an
  expiry, so a node that stops beating disappears by itself;
- `{prefix}nodes`: the set of names, for listing (readers prune expired ones);
- `{prefix}room:{room_id}`: the hosting node's name, kept alive by its beats;
- `{prefix}placed:{name}`: rooms placed on the node that it does not report yet,
  scored by placement time: they count in its load, else rooms created in the
  same second would all land on the node that looked idlest.

A placement is one Lua script, so that 20 people joining one new room through 3
nodes at once get one placement. The scripts reach keys they compute (the owner's
node key), which a single Redis (not Redis Cluster) allows.

Every coroutine but `run` raises redis.exceptions.RedisError (or OSError) when
Redis does not answer; `run` keeps beating through Redis restarts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypedDict

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from visio_core.cluster_scripts import BEAT as _BEAT
from visio_core.cluster_scripts import FORGET as _FORGET
from visio_core.cluster_scripts import PLACE as _PLACE
from visio_core.cluster_scripts import RELEASE as _RELEASE
from visio_core.cluster_scripts import VIEW as _VIEW
from visio_core.cluster_scripts import WHERE as _WHERE
from visio_core.placement import CPU_STEP

log = logging.getLogger("visio.cluster")
NodeState = Literal["serving", "draining", "front"]
STATES: tuple[NodeState, ...] = ("serving", "draining", "front")
RETRY = 1.0  # s between beats while Redis is unreachable: a restarted Redis learns us fast
# Short: a Redis that is down must not hold a join (or a beat) for long.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 2.0
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError, TimeoutError)


class RoomReport(TypedDict):
    worker: str
    pid: int
    participants: int


@dataclass
class Node:
    name: str
    url: str  # internal HTTP base other nodes relay to, e.g. "http://127.0.0.1:8081"
    state: NodeState = "serving"  # "front": VISIO_MEDIA_WORKERS=0, hosts no rooms
    cores: int = 0  # media workers serving
    cpu: float = 0.0  # sum of the workers' CPU, in cores
    streams: int = 0
    rooms: dict[str, RoomReport] = field(default_factory=dict)
    beat: float = 0.0  # time.time() of the report

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes | None) -> Node | None:
        """The node, or None for anything malformed: one bad key must not stop placement."""
        try:
            data = json.loads(text) if text is not None else None
        except (ValueError, TypeError):
            return None
        if not isinstance(data, dict):
            return None
        name, url, state = data.get("name"), data.get("url", ""), data.get("state", "serving")
        cores, cpu, streams = data.get("cores", 0), data.get("cpu", 0.0), data.get("streams", 0)
        beat, rooms = data.get("beat", 0.0), data.get("rooms", {})
        if not (isinstance(name, str) and name and isinstance(url, str) and state in STATES):
            return None
        if not (_is_int(cores) and _is_int(streams) and _is_number(cpu) and _is_number(beat)):
            return None
        if not isinstance(rooms, dict):
            return None
        return cls(name, url, state, cores, float(cpu), streams, _rooms(rooms), float(beat))

    def describe(self) -> str:
        return (
            f"{self.name} ({self.state}, {self.cores} cores): cpu {self.cpu:.2f}, "
            f"{self.streams} streams, {len(self.rooms)} rooms"
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _rooms(data: dict[Any, Any]) -> dict[str, RoomReport]:
    """The well-formed room entries; a bad one is skipped, the node's other facts still count."""
    rooms: dict[str, RoomReport] = {}
    for room_id, entry in data.items():
        if not (isinstance(room_id, str) and isinstance(entry, dict)):
            continue
        worker, pid, people = (
            entry.get("worker", ""),
            entry.get("pid", 0),
            entry.get("participants"),
        )
        if isinstance(worker, str) and _is_int(pid) and _is_int(people or 0):
            rooms[room_id] = RoomReport(worker=worker, pid=pid, participants=people or 0)
    return rooms


def node_load_key(node: Node, placed: int = 0) -> tuple[int, float, int, str]:
    """What "least loaded" means for a node: CPU per core in quarters (below that it is
    noise), then streams per core, then rooms reported and recently placed, then the name."""
    cores = max(node.cores, 1)
    return (
        math.floor(node.cpu / cores / CPU_STEP),
        node.streams / cores,
        len(node.rooms) + placed,
        node.name,
    )


def choose_node(nodes: Iterable[Node], placed: Mapping[str, int]) -> Node | None:
    """The least loaded node that may host rooms; `placed`: rooms placed but not yet reported."""
    serving = [n for n in nodes if n.state == "serving" and n.cores > 0]
    return min(serving, key=lambda n: node_load_key(n, placed.get(n.name, 0)), default=None)


class RedisCluster:
    """This node's view of the cluster: its heartbeat, and the placement of rooms on nodes."""

    def __init__(
        self,
        url: str,
        node_name: str,
        *,
        beat: float = 2.0,
        ttl: float = 6.0,
        room_ttl: float = 60.0,
        prefix: str = "visio:",
    ) -> None:
        self.url, self.node_name, self.prefix = url, node_name, prefix
        self.beat_every, self.ttl, self.room_ttl = beat, ttl, room_ttl
        self._redis: Redis = Redis.from_url(
            url,
            decode_responses=True,
            socket_connect_timeout=CONNECT_TIMEOUT,
            socket_timeout=READ_TIMEOUT,
        )
        self._beat = self._redis.register_script(_BEAT)
        self._view = self._redis.register_script(_VIEW)
        self._place = self._redis.register_script(_PLACE)
        self._where = self._redis.register_script(_WHERE)
        self._release = self._redis.register_script(_RELEASE)
        self._forget = self._redis.register_script(_FORGET)
        self._taken: set[tuple[str, str]] = set()  # (room, other node) already warned about
        self._malformed: set[str] = set()  # node keys already warned about

    def _key(self, kind: str, name: str | None = None) -> str:
        """`{prefix}nodes`, or `{prefix}{kind}:{name}`; name "" gives the scripts' prefix."""
        return f"{self.prefix}{kind}" if name is None else f"{self.prefix}{kind}:{name}"

    async def beat(self, node: Node) -> None:
        """Say this node lives, with its load, and keep the rooms it holds placed on it."""
        if node.name != self.node_name:
            raise ValueError(f"{self.node_name} cannot beat for {node.name}")
        taken = await self._beat(
            keys=[self._key("node", node.name), self._key("nodes"), self._key("placed", node.name)],
            args=[
                node.to_json(),
                _ms(self.ttl),
                node.name,
                _ms(self.room_ttl),
                self.prefix,
                self._since(),
                *node.rooms,
            ],
        )
        pairs = set(zip(taken[::2], taken[1::2], strict=True))
        for room_id, other in sorted(pairs - self._taken):
            # Two nodes hold one room (this one was thought gone): its people are split
            # until they rejoin through the placement, which names the other node.
            log.warning("room %s is held here but placed on live node %s", room_id, other)
        self._taken = pairs

    async def nodes(self) -> list[Node]:
        """The live nodes (their key has not expired); names whose key expired are pruned."""
        return (await self._nodes())[0]

    async def _nodes(self) -> tuple[list[Node], list[str], dict[str, int]]:
        """The live nodes, the names whose entry is there but unreadable, and each live
        node's recent placements it does not report yet: one round trip."""
        view = await self._view(keys=[self._key("nodes")], args=[self.prefix, self._since()])
        live, unreadable, placed = [], [], {}
        for name, value, count in zip(view[::3], view[1::3], view[2::3], strict=True):
            node = Node.from_json(value)
            if node is None or node.name != name:
                unreadable.append(name)
                if name not in self._malformed:
                    self._malformed.add(name)
                    log.warning("ignoring node %s: malformed entry in Redis", name)
                continue
            live.append(node)
            placed[name] = int(count)
        live.sort(key=lambda n: n.name)
        return live, unreadable, placed

    def _since(self) -> float:
        """Placements older than a room key's life no longer count: nobody joined them."""
        return time.time() - self.room_ttl

    async def place(self, room_id: str) -> Node | None:
        """The room's node, placing it first on the least loaded serving node if it lives on
        none. The answer may be another caller's choice (it won the race). None: no node serves."""
        found = await self.where(room_id)
        if found is not None:
            return found
        for _ in range(3):  # again only if the chosen node expired meanwhile
            nodes, unreadable, placed = await self._nodes()
            chosen = choose_node(nodes, placed)
            if chosen is None:
                return None
            answer = await self._place(
                keys=[
                    self._key("room", room_id),
                    self._key("node", chosen.name),
                    self._key("placed", chosen.name),
                ],
                args=[
                    self._key("node", ""),
                    chosen.name,
                    _ms(self.room_ttl),
                    time.time(),
                    room_id,
                    *unreadable,
                ],
            )
            if not answer:
                continue  # the chosen node expired meanwhile
            winner, ours = str(answer[0]), int(answer[1]) == 1
            if ours:  # logged once per room, by the caller that placed it
                log.info("room %s placed on node %s; least loaded", room_id, chosen.describe())
            if winner == chosen.name:
                return chosen
            known = next((n for n in nodes if n.name == winner), None)
            return known or await self.node(winner)
        return None

    async def node(self, name: str) -> Node | None:
        return Node.from_json(await self._redis.get(self._key("node", name)))

    async def where(self, room_id: str) -> Node | None:
        """The live node the room is placed on; None if it is nowhere or its node expired."""
        value = await self._where(keys=[self._key("room", room_id)], args=[self._key("node", "")])
        return Node.from_json(value) if value else None

    async def release(self, room_id: str) -> None:
        """The room ended here: forget its placement, unless another node holds it now."""
        await self._release(
            keys=[self._key("room", room_id), self._key("placed", self.node_name)],
            args=[self.node_name, room_id],
        )

    async def leave(self) -> None:
        """This node stops (drained): its rooms are placed elsewhere at once, not in `ttl`."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key("node", self.node_name))
            pipe.srem(self._key("nodes"), self.node_name)
            await pipe.execute()

    async def forget(self, name: str, silent_for: float) -> bool:
        """Drop a node that others cannot reach and that has not beaten for `silent_for` s,
        without waiting for its key to expire: its rooms are placed again on the next join.
        A node that beat since keeps its entry; a live node forgotten comes back at its
        next beat. True if it was dropped."""
        node = await self.node(name)
        if node is None:
            return False
        if time.time() - node.beat < silent_for:
            return False
        dropped = await self._forget(
            keys=[self._key("node", name), self._key("nodes")], args=[name, node.beat]
        )
        if dropped:
            log.warning(
                "node %s unreachable and silent for %.1f s: forgotten, its %d room(s) will be"
                " placed again",
                name,
                time.time() - node.beat,
                len(node.rooms),
            )
        return bool(dropped)

    async def live_rooms(self) -> dict[str, dict[str, object]]:
        """Room -> where it runs (node, worker, pid, participants), for `visio rooms list`."""
        nodes = await self.nodes()
        reported = sorted({r for n in nodes for r in n.rooms})
        owners = (
            await self._redis.mget([self._key("room", r) for r in reported]) if reported else []
        )
        owner_of = dict(zip(reported, owners, strict=True))
        live: dict[str, dict[str, object]] = {}
        for node in nodes:
            for room_id, room in node.rooms.items():
                # Two nodes reporting one room: the placement says which one new joins reach.
                if room_id in live and owner_of.get(room_id) != node.name:
                    continue
                live[room_id] = {"node": node.name, **room}
        return live

    async def run(self, report: Callable[[], Node]) -> None:
        """Beat every `beat` seconds until cancelled, through Redis being down or restarting
        (a restarted Redis is empty: the next beat restores this node and its rooms)."""
        down = False
        while True:
            try:
                await self.beat(report())
            except (*UNREACHABLE, RedisError) as e:
                log.debug("beat of node %s failed: %r", self.node_name, e)
                if not down:  # once, not every second of an outage
                    # a RedisError that is no connection's: e.g. a replica refusing writes
                    what = "unreachable" if isinstance(e, UNREACHABLE) else "refused the beat"
                    log.warning(
                        "Redis %s at %s (%s): node %s retries every %.0f s",
                        what, self.url, e, self.node_name, RETRY,
                    )  # fmt: skip
                down = True
            else:
                if down:
                    log.info("node %s registered again with Redis at %s", self.node_name, self.url)
                down = False
            await asyncio.sleep(min(RETRY, self.beat_every) if down else self.beat_every)

    async def close(self) -> None:
        await self._redis.aclose()


def _ms(seconds: float) -> int:
    """Redis expiries in milliseconds: tests beat every 0.2 s, and EX takes whole seconds."""
    return max(1, round(seconds * 1000))
