"""VISIO_SHOW_BUSY_TITLES: the overlap warning names the other meeting and its organizer.

Plain HTTP against the real stack (no browser needed): the warning is the
seed's sentence, and saving anyway stores the meeting.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Iterator

import pytest
import requests

from tests.e2e.conftest import PASSWORD, DavUser
from tests.portal.conftest import person
from tests.support import ics
from tests.support.stack import Stack


@pytest.fixture(scope="module")
def titled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {"VISIO_SHOW_BUSY_TITLES": "yes"}
    s = Stack(tmp_path_factory.mktemp("titles-stack"), extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_warning_names_the_meeting_and_its_organizer(titled: Stack) -> None:
    alice, bob = person(titled, "Alice Martin"), person(titled, "Bob Durand")
    day = dt.date.today() + dt.timedelta(days=3)
    stamp = day.strftime("%Y%m%d")
    user = DavUser(titled, bob.login, PASSWORD, "")
    user.calendar = user.make_calendar("calendar")
    body = ics.event(
        start=f"{stamp}T120000",
        end=f"{stamp}T130000",
        summary="test point audio journalier",
        extra=f"ORGANIZER;CN=Bob Durand:mailto:{bob.email}",
    )
    assert user.put("own.ics", body).status_code in (201, 204)

    web = requests.Session()
    page = web.get(titled.web_url + "login", timeout=30).text
    r = web.post(
        titled.web_url + "login",
        data={
            "csrf": csrf_of(page),
            "login": alice.login,
            "password": PASSWORD,
            "tz": "Europe/Paris",
        },
        timeout=30,
    )
    assert r.ok
    form = {
        "csrf": csrf_of(web.get(titled.web_url + "plan", timeout=30).text),
        "subject": "Chevauchement",
        "date": day.isoformat(),
        "start": "12:30",
        "duration": "60",
        "kind": "audio",
        "invitees": bob.email,
    }
    r = web.post(titled.web_url + "plan", data=form, timeout=30)
    assert r.status_code == 409
    text = html.unescape(r.text)
    assert (
        f"L'utilisateur {bob.name} est déjà occupé à la réunion : « test point audio journalier », "
        f"l'organisateur est Bob Durand ({bob.email}). "
        f"Avertissement de {day.strftime('%d.%m.%Y')} 12:30 à 13:00."
    ) in text
    r = web.post(titled.web_url + "plan", data={**form, "confirm": "1"}, timeout=30)
    assert r.ok and "/meeting?" in r.url
