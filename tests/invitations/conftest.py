from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.conftest import PASSWORD, DavUser
from tests.invitations.mail import Sink
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def stack(sink: Sink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("stack"), extra_env=sink.env)
    try:
        yield s.start()
    finally:
        s.stop()


def account(stack: Stack, name: str, login: str | None = None, calendar: bool = True) -> DavUser:
    """A real account (its address is login@example.org), with a calendar by default."""
    login = login or "u" + uuid.uuid4().hex[:8]
    stack.add_user(login, PASSWORD, email=f"{login}@example.org", name=name)
    user = DavUser(stack, login, PASSWORD, "")
    if calendar:
        user.calendar = user.make_calendar("calendar")
    return user


def address(user: DavUser) -> str:
    return f"{user.login}@example.org"


def attendee(addr: str, cn: str | None = None, **params: str) -> str:
    """An ATTENDEE line as clients write it (no RSVP: the server must add it)."""
    parts = ["ATTENDEE"]
    if cn:
        parts.append(f'CN="{cn}"' if any(c in cn for c in ",;:") else f"CN={cn}")
    parts += ["ROLE=REQ-PARTICIPANT", "PARTSTAT=NEEDS-ACTION"]
    parts += [f"{k.replace('_', '-').upper()}={v}" for k, v in params.items()]
    return ";".join(parts) + f":mailto:{addr}"


def organizer_line(user: DavUser, cn: str) -> str:
    return f"ORGANIZER;CN={cn}:mailto:{address(user)}"


def uid() -> str:
    return "inv-" + uuid.uuid4().hex[:12]
