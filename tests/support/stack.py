"""Start the real stack (`visio serve`) on free ports in a temporary data dir."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

from tests.support import database as test_db
from visio_core.db import Database

ROOT = Path(__file__).resolve().parents[2]
VISIO = [sys.executable, "-m", "visio_cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = predicate()
            if result:
                return result
        except Exception as e:  # keep polling until the deadline
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out waiting for {what}: {last_error!r}")


@dataclass
class Stack:
    data_dir: Path
    extra_env: Mapping[str, str] = field(default_factory=dict)
    caldav_port: int = field(default_factory=free_port)
    web_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    # VISIO_TEST_DATABASE_URL (read before VISIO_* leave the environment): PostgreSQL.
    database_server: str = field(default_factory=test_db.server_url)
    # Several nodes of one cluster share one database: its URL (else one per stack).
    shared_database: str = ""

    @property
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        for k in list(env):
            if k.startswith("VISIO_"):
                del env[k]
        env.update(
            VISIO_CONFIG=str(ROOT / "radicale.conf"),
            VISIO_DATA_DIR=str(self.data_dir),
            VISIO_CALDAV_LISTEN=f"127.0.0.1:{self.caldav_port}",
            VISIO_WEB_LISTEN=f"127.0.0.1:{self.web_port}",
            VISIO_PUBLIC_URL=self.web_url.rstrip("/"),
        )
        if self.database_server or self.shared_database:
            env["VISIO_DATABASE_URL"] = str(self.database)
        env.update(self.extra_env)
        return env

    @property
    def database(self) -> Path | str:
        """The stack's database: its SQLite file, or its own schema on the test server."""
        if self.shared_database:
            return self.shared_database
        return test_db.target(self.data_dir / "visio.sqlite3", self.database_server)

    @contextmanager
    def db(self) -> Iterator[Database]:
        """The stack's database, opened here (tests read and doctor it)."""
        db = Database(self.database, upgrade=False)
        try:
            yield db
        finally:
            db.close()

    @property
    def caldav_url(self) -> str:
        return f"http://127.0.0.1:{self.caldav_port}/"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}/"

    def visio(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*VISIO, *args],
            input=stdin,
            env=self.env,
            cwd=ROOT,
            text=True,
            capture_output=True,
            check=check,
            timeout=120,
        )

    def add_user(
        self, login: str, password: str, email: str | None = None, name: str | None = None
    ) -> None:
        self.visio(
            "users",
            "add",
            login,
            "--email",
            email or f"{login}@example.org",
            "--name",
            name or login.title(),
            "--password-stdin",
            stdin=password + "\n",
        )

    def start(self) -> Stack:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.database_server or self.shared_database:  # upgraded by hand, as in production
            self.visio("db", "upgrade")
        log = open(self.data_dir / "serve.log", "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [*VISIO, "serve"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._log = log
        try:
            self._wait_started()
        except BaseException:
            self.stop()  # a start that timed out must not leave the servers running
            raise
        return self

    def _wait_started(self) -> None:
        # Generous: on a loaded machine (browsers of other tests, other jobs) starting
        # Python, Radicale and aiortc took more than 20 s.
        # Every media worker asked for, not just the first: a test placing rooms on
        # "the other worker" must not find it still importing aiortc.
        workers = int(self.extra_env.get("VISIO_MEDIA_WORKERS", "1") or 1)
        wait_for(
            lambda: self._workers_serving() >= workers,
            timeout=90,
            what=f"web backend with {workers} media worker(s)",
        )
        if self.extra_env.get("VISIO_CALDAV_LISTEN") == "off":
            return  # another node of the cluster runs the CalDAV server
        wait_for(
            lambda: requests.request("OPTIONS", self.caldav_url, timeout=1).status_code < 500,
            timeout=90,
            what="CalDAV server",
        )

    def _workers_serving(self) -> int:
        resp = requests.get(self.web_url + "healthz", timeout=1)
        return int(resp.json().get("workers", 0)) if resp.ok else 0

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
        self._log.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def log_text(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")
