"""A throwaway PostgreSQL server in a temporary folder, on a free port.

Recipe as for slapd: the Debian server binaries (initdb, pg_ctl), a cluster
initialised in the folder with trust authentication on 127.0.0.1 only, the
socket in the folder too, stopped (and the folder left to the caller) at the end.

Each test stack or store gets its own schema (`fresh_url`), so one server serves
a whole session without tests seeing each other's rows.

`python -m tests.support.postgres COMMAND…` runs COMMAND with
VISIO_TEST_DATABASE_URL pointing at a fresh server (`make test-postgres`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.database import ENV_URL
from tests.support.stack import free_port, wait_for

BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def _binary(name: str) -> str:
    for folder in BIN_DIRS:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} not found: install the `postgresql` Debian package")
    return found


def _as_postgres() -> dict[str, object]:
    """initdb and postgres refuse to run as root: drop to `postgres` (or nobody) then."""
    if os.geteuid() != 0:
        return {}
    import pwd

    for name in ("postgres", "nobody"):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            continue
        return {"user": entry.pw_uid, "group": entry.pw_gid}
    raise RuntimeError("running as root and no `postgres` user to run PostgreSQL as")


@dataclass
class Postgres:
    root: Path
    port: int = 0

    @property
    def url(self) -> str:
        # Through the socket in the folder, not TCP: the portal and browser tests move
        # into a loopback-only network namespace (tests/browser/netns.py), where the
        # server's 127.0.0.1 is not reachable but its socket file still is.
        return f"postgresql:///visio?host={self.root}&port={self.port}&user=visio"

    def start(self) -> Postgres:
        self.port = self.port or free_port()
        data = self.root / "data"
        self.root.mkdir(parents=True, exist_ok=True)
        who = _as_postgres()
        if who:
            os.chown(self.root, who["user"], who["group"])  # type: ignore[arg-type]
        subprocess.run(
            [_binary("initdb"), "-D", str(data), "-U", "visio", "--auth=trust", "-E", "UTF8"],
            check=True,
            capture_output=True,
            cwd=self.root,
            **who,  # type: ignore[arg-type]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={self.port}"
            f" -c unix_socket_directories={self.root} -c fsync=off"
            " -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        subprocess.run(
            [
                _binary("pg_ctl"),
                "-D",
                str(data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "-t",
                "60",
                "start",
            ],
            check=True,
            capture_output=True,
            cwd=self.root,
            **who,  # type: ignore[arg-type]
        )
        admin = self.url.replace("/visio?", "/postgres?", 1)
        wait_for(lambda: psycopg.connect(admin).close() or True, 30, what="PostgreSQL")
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("CREATE DATABASE visio")
        return self

    def stop(self) -> None:
        who = _as_postgres()
        subprocess.run(
            [_binary("pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop"],
            check=False,
            capture_output=True,
            cwd=self.root,
            **who,  # type: ignore[arg-type]
        )


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.support.postgres COMMAND…", file=sys.stderr)
        return 2
    root = Path(tempfile.mkdtemp(prefix="visio-pg-"))
    server = Postgres(root).start()
    code = 1
    try:
        env = dict(os.environ, **{ENV_URL: server.url})
        print(f"PostgreSQL at {server.url} ({root})", file=sys.stderr)
        code = subprocess.run(argv, env=env, check=False).returncode
        return code
    finally:
        server.stop()
        if code == 0:
            shutil.rmtree(root, ignore_errors=True)
        else:  # the server's log may explain a failure
            print(f"PostgreSQL's folder kept: {root}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
