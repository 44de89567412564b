"""deploy/env/*.env and deploy/systemd/*.service: read as systemd and the program read them.

Every variable the example files set is one the program reads, every file
resolves into settings without an error (and into the roles its header claims),
a shell that sources a file (`set -a; . file`) sees the same values as systemd's
EnvironmentFile=, and `systemd-analyze verify` finds nothing to say about the units.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.stack import ROOT
from visio_core import settings

ENV_DIR = ROOT / "deploy" / "env"
UNITS = sorted((ROOT / "deploy" / "systemd").glob("*.service"))
FILES = sorted(ENV_DIR.glob("*.env"))
# Announced by a design and not parsed by settings.py yet (none now).
ANNOUNCED: set[str] = set()
# Read by libraries, not by settings.py: libpq's password file.
OTHERS = {"PGPASSFILE"}


def read_env(path: Path) -> dict[str, str]:
    """KEY=VALUE lines as systemd's EnvironmentFile= reads them (a whole value may be
    in double quotes; # starts a comment line)."""
    values: dict[str, str] = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep and key.isidentifier(), f"{path.name}: {line!r}"
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        values[key] = value
    return values


def test_there_are_the_three_nodes_and_a_front() -> None:
    assert [f.name for f in FILES] == ["front.env", "node-a.env", "node-b.env", "node-c.env"]


def test_what_every_node_shares_is_written_once_the_same_in_each_file() -> None:
    def shared(path: Path) -> str:
        text = path.read_text()
        return text[text.index("# --- The same on every node") : text.index("# --- This node")]

    first = shared(FILES[0])
    assert "VISIO_SECRET_KEY_FILE" in first and "VISIO_REDIS_URL" in first
    assert all(shared(path) == first for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_variable_is_one_the_program_reads(path: Path) -> None:
    known = {variable for variable, _ in settings._OPTIONS.values()} | {"VISIO_CONFIG"}
    unknown = set(read_env(path)) - known - ANNOUNCED - OTHERS
    assert not unknown, f"{path.name} sets variables nothing reads: {sorted(unknown)}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_a_shell_sourcing_the_file_sees_what_systemd_sees(path: Path) -> None:
    shown = subprocess.run(
        ["sh", "-c", 'set -a; . "$0"; env -0', str(path)],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout.decode()
    environment = dict(item.split("=", 1) for item in shown.split("\0") if "=" in item)
    for key, value in read_env(path).items():
        assert environment.get(key) == value, key


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_file_resolves_into_the_roles_it_describes(path: Path) -> None:
    env = read_env(path)
    ours, _ = settings.split_config((ROOT / "radicale.conf").read_text())
    s = settings.resolve(ours, env)
    assert s.public_url == "https://visio.example.org"
    assert s.database_url.startswith("postgresql://")
    assert str(s.key_path) == "/etc/visio/secret.key"
    assert [str(n) for n in s.limits.trusted_proxies] == ["10.0.0.10/32"]
    node = path.stem
    assert s.node.name == ("front-1" if node == "front" else node)
    assert s.node.clustered
    assert s.node.internal_url == "http://{}:{}".format(*s.web_listen)
    assert s.caldav_enabled == (node == "node-a")
    assert s.caldav_url == "http://10.0.0.11:5232/"  # node A's, from everywhere
    assert str(s.recordings_dir) == "/srv/visio/recordings"
    assert (s.media_workers == 0) == (node == "front")
    assert (s.ldap_sync_interval > 0) == (node == "node-a")
    if node != "front":
        assert s.ice_announced_address.startswith("192.0.2.")


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_finds_nothing_to_say_about_the_unit(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # The program where this checkout has it (the unit names /opt/visio/venv).
    visio = ROOT / ".venv" / "bin" / "visio"
    copy = tmp_path / unit.name
    text = unit.read_text()
    assert "/opt/visio/venv/bin/visio " in text
    copy.write_text(text.replace("/opt/visio/venv/bin/visio ", f"{visio} "))
    checked = subprocess.run(
        [analyze, "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0 and not checked.stderr.strip(), checked.stderr
