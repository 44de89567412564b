"""Recording tests: the real stack, real Chromium (tests/browser's fixtures), a real nginx-rtmp."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import browsers, namespace, playwright, sounds
from tests.e2e.conftest import DavUser, new_user
from tests.recording.rtmp import MODULE, NGINX, RtmpServer
from tests.support.stack import Stack

__all__ = ["browsers", "namespace", "playwright", "sounds"]


@pytest.fixture(scope="package")
def stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("recording-stack")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def rtmp(namespace: None, tmp_path: Path) -> Iterator[RtmpServer]:
    assert shutil.which(NGINX) and Path(MODULE).exists(), "run scripts/system-deps.sh"
    server = RtmpServer(tmp_path / "nginx").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)
