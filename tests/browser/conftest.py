"""Real headless Chromium (fake camera and microphone) against the real stack, on loopback only."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.browser.netns import loopback_namespace
from tests.e2e.conftest import DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="package")
def sounds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A voice and a silence, made here with espeak-ng and sox (Debian packages)."""
    for tool in ("espeak-ng", "sox"):
        assert shutil.which(tool), f"{tool} missing: run scripts/system-deps.sh"
    d = tmp_path_factory.mktemp("sounds")
    raw = d / "raw.wav"
    text = (
        "Bonjour à toutes et à tous. Nous allons commencer la réunion par le budget, "
        "puis nous parlerons du calendrier des travaux et des prochaines étapes du projet."
    )
    subprocess.run(["espeak-ng", "-v", "fr", "-s", "150", "-w", str(raw), text], check=True)
    speech, silence = d / "speech.wav", d / "silence.wav"
    subprocess.run(["sox", str(raw), "-r", "48000", "-c", "1", "-b", "16", str(speech)], check=True)
    subprocess.run(
        ["sox", "-n", "-r", "48000", "-c", "1", "-b", "16", str(silence), "trim", "0", "5"],
        check=True,
    )
    return {"speech": speech, "silence": silence}


@pytest.fixture(scope="package")
def namespace() -> Iterator[None]:
    # Package scope: the rest of the suite runs back in the host's network.
    with loopback_namespace():
        yield


@pytest.fixture(scope="package")
def stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("browser-stack")).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package")
def playwright(namespace: None) -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


class Browsers:
    """Launches one Chromium per participant (each has its own fake microphone file)."""

    def __init__(self, pw: Playwright, sounds: dict[str, Path], tmp: Path) -> None:
        self.pw, self.sounds, self.tmp = pw, sounds, tmp
        self.open: list[Browser] = []

    def launch(self, voice: str = "silence", lang: str = "fr") -> Browser:
        browser = self.pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                *FLAGS,
                f"--use-file-for-fake-audio-capture={self.sounds[voice]}",
                f"--lang={lang}",
            ],
        )
        self.open.append(browser)
        return browser

    def close(self) -> None:
        for b in self.open:
            b.close()


@pytest.fixture
def browsers(playwright: Playwright, sounds: dict[str, Path], tmp_path: Path) -> Iterator[Browsers]:
    b = Browsers(playwright, sounds, tmp_path)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def book(
    user: DavUser,
    href: str,
    *,
    starts_in: dt.timedelta = dt.timedelta(minutes=-5),
    length: dt.timedelta = dt.timedelta(hours=1),
    categories: str = "Visio",
    extra: str = "X-VISIO-LOBBY:FALSE",
    uid: str | None = None,
) -> str:
    """PUT an event starting `starts_in` from now (UTC); returns its join link."""
    start = dt.datetime.now(dt.UTC) + starts_in
    body = ics.event(
        uid=uid,
        start=_stamp(start),
        end=_stamp(start + length),
        tz="UTC",
        categories=categories,
        extra=extra,
    )
    r = user.put(href, body)
    assert r.status_code in (201, 204), r.text
    return ics.join_link(user.get(href).text)
