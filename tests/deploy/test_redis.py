"""deploy/redis.conf run for real: Debian's redis-server with the shipped file included.

Only the address, the port and the password are rewritten; the test then does
what a node does (keys with an expiry, a set, a sorted set, a Lua script, all
under `visio:`) as the `visio` user of the file's ACL, and checks what the file
promises: no access without the password, nothing outside `visio:`, no
administrative commands, and nothing written to disk.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from tests.support.stack import ROOT, free_port, wait_for

SHIPPED = ROOT / "deploy" / "redis.conf"
PASSWORD = "0123456789abcdef0123456789abcdef"


def _rewrite(text: str, pattern: str, replacement: str) -> str:
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"deploy/redis.conf no longer has one {pattern!r}"
    return new


@dataclass
class Server:
    """redis-server with the shipped file, in a folder; restartable on the same port."""

    folder: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def client(self, password: str | None = PASSWORD, user: str = "visio") -> redis.Redis:
        if password is None:
            return redis.Redis(port=self.port)
        return redis.Redis(port=self.port, username=user, password=password)

    def start(self) -> Server:
        binary = shutil.which("redis-server")
        assert binary, "run scripts/system-deps.sh (Debian package redis-server)"
        text = SHIPPED.read_text()
        text = _rewrite(text, r"^bind .*$", "bind 127.0.0.1")
        text = _rewrite(text, r"^port 6379$", f"port {self.port}")
        text = _rewrite(text, r">CHANGE-ME\S*", ">" + PASSWORD)
        (self.folder / "visio.conf").write_text(text)
        # What Debian's /etc/redis/redis.conf keeps (its folder and log), then the include.
        main = self.folder / "redis.conf"
        main.write_text(
            f'dir {self.folder}\nlogfile "{self.folder}/redis.log"\ndaemonize no\n'
            f"include {self.folder}/visio.conf\n"
        )
        self.proc = subprocess.Popen(
            [binary, str(main)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        with self.client() as client:
            wait_for(client.ping, timeout=30, what="redis-server")
        return self

    def stop(self) -> None:
        """SIGTERM: a clean shutdown, which writes a snapshot if any save point is set."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        self.proc = None


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    s = Server(tmp_path).start()
    try:
        yield s
    finally:
        s.stop()


# One placement, as the cluster's script does it: the room's node if set, else this one.
PLACE = """
local current = redis.call('GET', KEYS[1])
if current then return current end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 60)
redis.call('ZADD', KEYS[2], ARGV[2], KEYS[1])
return ARGV[1]
"""


def test_the_nodes_user_does_what_a_node_does_under_its_prefix(server: Server) -> None:
    with server.client() as r:
        assert r.set("visio:node:a", '{"state": "serving"}', ex=6)
        assert 0 < r.ttl("visio:node:a") <= 6
        r.sadd("visio:nodes", "a")
        assert r.smembers("visio:nodes") == {b"a"}
        place = r.register_script(PLACE)
        keys = ["visio:room:r1", "visio:placed:a"]
        assert place(keys=keys, args=["a", 1]) == b"a"
        assert place(keys=keys, args=["b", 2]) == b"a"  # placed once
        assert r.zcard("visio:placed:a") == 1


def test_nothing_without_the_password_outside_the_prefix_or_administrative(
    server: Server,
) -> None:
    with server.client(None) as anonymous, pytest.raises(redis.AuthenticationError):
        anonymous.ping()  # the default user is off
    with server.client("wrong") as wrong, pytest.raises(redis.AuthenticationError):
        wrong.ping()
    with server.client() as r:
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.set("other:key", "1")
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.config_get("save")
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.flushall()


def test_nothing_is_written_to_disk_a_restart_starts_empty(server: Server) -> None:
    with server.client() as r:
        r.set("visio:room:r1", "a", ex=60)
        with pytest.raises(redis.exceptions.NoPermissionError):
            r.bgsave()  # not even on request
    server.stop()
    assert not (server.folder / "dump.rdb").exists()
    assert not (server.folder / "appendonlydir").exists()
    server.start()
    with server.client() as r:
        assert r.get("visio:room:r1") is None  # the nodes' next beats write it back
