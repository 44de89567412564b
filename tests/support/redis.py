"""A throwaway redis-server in a temporary folder, on a free loopback port.

The Debian package's binary, in the foreground so that the test owns its pid,
with no persistence (`--save "" --appendonly no`): a restart gives an empty
Redis, as a real one restarted without its dump would, which is what the
cluster must survive. `restart()` comes back on the SAME port, so that clients
holding the URL reconnect by themselves.

Also listening on a Unix socket in the folder (`unix_url`), for processes moved
into a loopback-only network namespace (tests/browser/netns.py), as for
PostgreSQL (tests/support/postgres.py).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import free_port, wait_for

UNIX_PATH_MAX = 100  # sun_path holds 108 bytes; leave room for the terminating NUL


def _binary() -> str:
    found = shutil.which("redis-server") or "/usr/bin/redis-server"
    if not Path(found).exists():
        raise RuntimeError("redis-server not found: install the `redis-server` Debian package")
    return found


@dataclass
class RedisServer:
    root: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def socket_path(self) -> Path:
        return self.root / "redis.sock"

    @property
    def unix_url(self) -> str:
        if len(str(self.socket_path)) > UNIX_PATH_MAX:
            raise RuntimeError(f"{self.socket_path}: too long for a Unix socket")
        return f"unix://{self.socket_path}?db=0"

    def start(self) -> RedisServer:
        self.port = self.port or free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        args = [
            _binary(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.root),
            "--logfile", str(self.root / "redis.log"),
            "--daemonize", "no",
        ]  # fmt: skip
        if len(str(self.socket_path)) <= UNIX_PATH_MAX:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.proc = subprocess.Popen(
            args, cwd=self.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for(self._pong, 20, what=f"redis-server on port {self.port} (log: {self.root})")
        return self

    def _pong(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")

    def stop(self) -> None:
        """SIGTERM, then wait: without persistence it exits at once."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        self._end(signal.SIGKILL)

    def restart(self) -> RedisServer:
        """Stop, then start again on the same port: empty, as after a crash without a dump."""
        self.stop()
        return self.start()

    def _end(self, sig: signal.Signals) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
