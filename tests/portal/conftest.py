"""The booking portal in real headless Chromium, against the real stack and a real SMTP server.

Everything runs in a loopback-only network namespace (like tests/browser): the
instant meeting ends in a real WebRTC room.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.browser.conftest import CHROMIUM, FLAGS
from tests.browser.netns import loopback_namespace
from tests.e2e.conftest import PASSWORD
from tests.invitations.mail import Sink
from tests.support.stack import Stack

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "portal"
SUPPORT_PHONE = "02 14 02 14 10"
ZONE = "Europe/Paris"


@dataclass(frozen=True)
class Person:
    login: str
    name: str

    @property
    def email(self) -> str:
        return f"{self.login}@example.org"


@pytest.fixture(scope="package")
def namespace() -> Iterator[None]:
    with loopback_namespace():
        yield


@pytest.fixture(scope="package")
def sink(namespace: None) -> Iterator[Sink]:
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package")
def stack(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        **sink.env,
        "VISIO_SUPPORT_PHONE": SUPPORT_PHONE,
        "VISIO_HELP_URL": "https://aide.example.org/visio",
    }
    s = Stack(tmp_path_factory.mktemp("portal-stack"), extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="package")
def browser(namespace: None) -> Iterator[Browser]:
    with sync_playwright() as p:
        b = _launch(p)
        try:
            yield b
        finally:
            b.close()


def _launch(p: Playwright) -> Browser:
    return p.chromium.launch(executable_path=CHROMIUM, args=[*FLAGS, "--lang=fr"])


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="fr-FR", timezone_id=ZONE)
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


def person(stack: Stack, name: str) -> Person:
    login = "p" + uuid.uuid4().hex[:8]
    stack.add_user(login, PASSWORD, email=f"{login}@example.org", name=name)
    return Person(login, name)


def sign_in(page: Page, stack: Stack, who: Person, password: str = PASSWORD) -> None:
    page.goto(stack.web_url)
    page.get_by_label("Identifiant").fill(who.login)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.get_by_role("heading", name="Bienvenue sur votre portail visio").wait_for()


def shot(page: Page, name: str) -> None:
    """A screenshot a person can look at (tests/artifacts is ignored by git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
