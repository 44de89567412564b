"""This node among several: its name, its internal address, Redis, the shared key, its roles.

One machine needs none of this (in-process placement, SQLite, the key in the
data dir). Several machines share a PostgreSQL database (VISIO_DATABASE_URL), a
Redis (VISIO_REDIS_URL) that places rooms on nodes, and one server key, so that
a link and a resume word are the same whichever node answers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

OPTIONS: dict[str, tuple[str, str]] = {
    "redis_url": ("VISIO_REDIS_URL", ""),  # empty: rooms placed on this node's workers only
    "node_name": ("VISIO_NODE_NAME", ""),  # empty: the host name
    "internal_url": ("VISIO_INTERNAL_URL", ""),  # empty: http://<web listen>
    "secret_key_file": ("VISIO_SECRET_KEY_FILE", ""),  # empty: <data dir>/secret.key
    # The CalDAV host as this node reaches it (passwords, RSVP answers); empty: our own.
    "caldav_url": ("VISIO_CALDAV_URL", ""),
    "recordings_dir": ("VISIO_RECORDINGS_DIR", ""),  # empty: <data dir>/recordings
}
OFF = "off"  # VISIO_CALDAV_LISTEN=off: this node runs no CalDAV server


class NodeError(ValueError):
    pass


@dataclass(frozen=True)
class NodeSettings:
    name: str
    internal_url: str  # how the other nodes reach this node's web port (no trailing /)
    redis_url: str = ""
    key_file: Path | None = None  # None: <data dir>/secret.key
    caldav_url: str = ""  # "http://node-a:5232/"; "" : this node's own CalDAV server
    recordings_dir: Path | None = None  # shared storage (the same path on every node)

    @property
    def clustered(self) -> bool:
        return bool(self.redis_url)


def parse(
    raw: Mapping[str, str], web_listen: tuple[str, int], media_workers: int, caldav: bool
) -> NodeSettings:
    name = raw["node_name"].strip() or os.uname().nodename
    if not name or any(c.isspace() or c in "/:" for c in name) or len(name) > 63:
        raise NodeError(f"VISIO_NODE_NAME must be one word without / or : (got {name!r})")
    redis_url = raw["redis_url"].strip()
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise NodeError(
            f"VISIO_REDIS_URL must start with redis://, rediss:// or unix:// (got {redis_url!r})"
        )
    if media_workers == 0 and not redis_url:
        raise NodeError(
            "VISIO_MEDIA_WORKERS=0 makes a node that hosts no rooms: it needs VISIO_REDIS_URL,"
            " so that rooms are placed on the other nodes"
        )
    internal = raw["internal_url"].strip().rstrip("/")
    if not internal:
        host, port = web_listen
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a comparison, not a bind
            host = name  # listening everywhere: the others reach us by our name
        internal = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    if not internal.startswith(("http://", "https://")):
        raise NodeError(
            f"VISIO_INTERNAL_URL must start with http:// or https:// (got {internal!r})"
        )
    key_file = raw["secret_key_file"].strip()
    caldav_url = raw["caldav_url"].strip()
    if caldav_url and not caldav_url.startswith(("http://", "https://")):
        raise NodeError(
            f"VISIO_CALDAV_URL must start with http:// or https:// (got {caldav_url!r})"
        )
    if not caldav and not caldav_url:
        raise NodeError(
            "VISIO_CALDAV_LISTEN=off: set VISIO_CALDAV_URL to the address of the node that runs"
            " the CalDAV server (e.g. http://node-a:5232/): passwords are checked there"
        )
    recordings = raw["recordings_dir"].strip()
    return NodeSettings(
        name=name,
        internal_url=internal,
        redis_url=redis_url,
        key_file=Path(key_file).expanduser().absolute() if key_file else None,
        caldav_url=caldav_url.rstrip("/") + "/" if caldav_url else "",
        recordings_dir=Path(recordings).expanduser().absolute() if recordings else None,
    )
