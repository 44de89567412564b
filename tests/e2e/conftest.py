from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from tests.support.stack import Stack

PASSWORD = "correct horse battery"


@dataclass
class DavUser:
    """A real account on the running stack, with its own fresh calendar."""

    stack: Stack
    login: str
    password: str
    calendar: str  # URL of a calendar collection, ending in /

    @property
    def session(self) -> requests.Session:
        s = requests.Session()
        s.auth = (self.login, self.password)
        return s

    def url(self, href: str) -> str:
        return self.calendar + href

    def put(self, href: str, ics: str, **headers: str) -> requests.Response:
        return self.session.put(
            self.url(href),
            data=ics.encode(),
            timeout=60,
            headers={"Content-Type": "text/calendar; charset=utf-8", **headers},
        )

    def get(self, href: str) -> requests.Response:
        return self.session.get(self.url(href), timeout=30)

    def make_calendar(self, name: str | None = None) -> str:
        url = f"{self.stack.caldav_url}{self.login}/{name or uuid.uuid4().hex[:10]}/"
        r = self.session.request("MKCALENDAR", url, timeout=30)
        assert r.status_code == 201, r.text
        return url


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("stack")).start()
    try:
        yield s
    finally:
        s.stop()


def new_user(stack: Stack) -> DavUser:
    login = "u" + uuid.uuid4().hex[:8]
    stack.add_user(login, PASSWORD)
    user = DavUser(stack, login, PASSWORD, "")
    user.calendar = user.make_calendar("calendar")
    return user


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)
