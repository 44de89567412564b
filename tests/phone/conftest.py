"""The real stack with the SIP gateway on, in a loopback-only namespace shared with Chromium."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.browser.conftest import browsers, playwright, sounds  # noqa: F401 - fixtures
from tests.browser.netns import loopback_namespace
from tests.e2e.conftest import DavUser, new_user
from tests.phone.sipp import free_udp_port
from tests.support import ics
from tests.support.stack import Stack

TRUNK = ("trunk", "s3cret-trunk-password")
ALLOWED = "127.0.0.0/29"  # 127.0.0.9 and above must authenticate


@pytest.fixture(scope="package")
def namespace() -> Iterator[None]:
    with loopback_namespace():
        yield


@dataclass
class PhoneStack:
    stack: Stack
    sip: tuple[str, int]

    def log(self) -> str:
        return self.stack.log_text()


def start_phone_stack(data: Path, extra_env: dict[str, str] | None = None) -> PhoneStack:
    """`visio serve` with the gateway on a free port (stop it with `.stack.stop()`)."""
    secret = data.parent / f"{data.name}-sip-password"
    secret.write_text(TRUNK[1] + "\n")
    port = free_udp_port()
    s = Stack(
        data,
        extra_env={
            "VISIO_SIP_LISTEN": f"127.0.0.1:{port}",
            "VISIO_SIP_ALLOW": ALLOWED,
            "VISIO_SIP_USER": TRUNK[0],
            "VISIO_SIP_PASSWORD_FILE": str(secret),
            **(extra_env or {}),
        },
    ).start()
    return PhoneStack(s, ("127.0.0.1", port))


@pytest.fixture(scope="package")
def phone_stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PhoneStack]:
    phone = start_phone_stack(tmp_path_factory.mktemp("phone-stack"))
    try:
        yield phone
    finally:
        phone.stack.stop()


@pytest.fixture
def user(phone_stack: PhoneStack) -> DavUser:
    return new_user(phone_stack.stack)


@dataclass
class Meeting:
    link: str
    number: str
    room_id: str = ""


def _stamp(t: dt.datetime) -> str:
    return t.strftime("%Y%m%dT%H%M%S")


def book(
    user: DavUser,
    href: str,
    *,
    starts_in: dt.timedelta = dt.timedelta(minutes=-5),
    categories: str = "Audio",
    extra: str = "X-VISIO-LOBBY:FALSE",
) -> Meeting:
    start = dt.datetime.now(dt.UTC) + starts_in
    body = ics.event(
        start=_stamp(start),
        end=_stamp(start + dt.timedelta(hours=1)),
        tz="UTC",
        categories=categories,
        extra=extra,
    )
    r = user.put(href, body)
    assert r.status_code in (201, 204), r.text
    stored = user.get(href).text
    event = ics.vevents(stored)[0]
    number = str(event["X-VISIO-ROOM-NUMBER"])
    return Meeting(ics.join_link(stored), number, str(event["X-VISIO-ROOM"]))


@pytest.fixture
def work(tmp_path: Path) -> Path:
    return tmp_path
