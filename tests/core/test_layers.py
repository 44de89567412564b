"""The processes' boundaries (issue 15): what the front and a media worker load.

The front (portal, join pages, SIP gateway, relay) never loads the SFU, aiortc
or PyAV; a media worker never loads the portal or anything of the front.
Checked in fresh interpreters, by what `import` actually pulls in.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def loaded(*modules: str) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for m in {list(modules)!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_the_front_loads_no_media_plane() -> None:
    mods = loaded("visio_cli.serve", "conference_backend.app", "conference_backend.phone.service")
    media = sorted(m for m in mods if m.split(".")[0] in ("visio_rooms", "aiortc", "av", "aioice"))
    assert media == []


def test_a_worker_loads_nothing_of_the_front() -> None:
    mods = loaded("visio_rooms.__main__", "visio_rooms.app")
    front = sorted(
        m
        for m in mods
        if m.split(".")[0] in ("conference_backend", "aiohttp_jinja2", "aiohttp_session")
    )
    assert front == []
    assert "visio_rooms.sfu.passthrough" in mods  # the check sees what a worker loads
