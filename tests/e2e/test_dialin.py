"""With VISIO_DIALIN_NUMBER set, events and join pages carry phone joining (here in English)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import requests
from icalendar.prop import vUri

from tests.e2e.conftest import DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack

DIALIN = "+33 1 23 45 67 89"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("dial"),
        extra_env={"VISIO_DIALIN_NUMBER": DIALIN, "VISIO_LANGUAGE": "en"},
    ).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def user(stack: Stack) -> DavUser:
    return new_user(stack)


def phone_and_video(text: str) -> tuple[vUri, vUri]:
    confs = ics.conferences(ics.vevents(text)[0])
    phones = [c for c in confs if str(c).startswith("tel:")]
    links = [c for c in confs if str(c).startswith("http")]
    assert len(phones) == 1 and len(links) == 1, [str(c) for c in confs]
    return phones[0], links[0]


def features(conf: vUri) -> str:
    value = conf.params["FEATURE"]
    return ",".join(value) if isinstance(value, list) else str(value)


def test_visio_event_gets_phone_conference_and_english_text(user: DavUser) -> None:
    assert user.put("dial.ics", ics.event(uid="dial-1", summary="Board meeting")).status_code == 201
    stored = user.get("dial.ics").text
    ev = ics.vevents(stored)[0]
    number = str(ev["X-VISIO-ROOM-NUMBER"])
    assert re.fullmatch(r"[1-9]\d{8,}", number)

    phone, video = phone_and_video(stored)
    assert str(phone) == f"tel:+33123456789,,{number}%23"
    assert features(phone) == "PHONE"
    assert features(video) == "AUDIO,VIDEO"
    assert video.params["LABEL"] == "Join the meeting"
    assert str(video).startswith(user.stack.web_url + "j/")

    description = str(ev["DESCRIPTION"])
    assert DIALIN in description
    assert f"{number} followed by #" in description
    assert "Rejoindre" not in stored and "téléphone" not in stored


def test_join_page_shows_the_phone_line(user: DavUser) -> None:
    user.put("page.ics", ics.event(uid="dial-page-1", summary="Weekly sync"))
    stored = user.get("page.ics").text
    number = str(ics.vevents(stored)[0]["X-VISIO-ROOM-NUMBER"])
    link = ics.join_link(stored)

    english = requests.get(link, headers={"Accept-Language": "en"}, timeout=10)
    assert english.status_code == 200
    line = re.search(r'data-role="phone">([^<]*)<', english.text)
    assert line, english.text
    assert DIALIN in line.group(1) and f"{number} followed by #" in line.group(1)

    french = requests.get(link, headers={"Accept-Language": "fr"}, timeout=10)
    line = re.search(r'data-role="phone">([^<]*)<', french.text)
    assert line and DIALIN in line.group(1) and f"{number} suivi de #" in line.group(1)


def test_phone_conference_survives_client_round_trips(user: DavUser) -> None:
    user.put("trip.ics", ics.event(uid="dial-trip-1", categories="Audio"))
    stored = user.get("trip.ics").text
    phone, audio = phone_and_video(stored)
    assert features(audio) == "AUDIO"

    # A client that PUTs back exactly what it fetched: nothing lost, nothing doubled.
    assert user.put("trip.ics", stored).status_code == 204
    again = user.get("trip.ics").text
    assert [str(c) for c in phone_and_video(again)] == [str(phone), str(audio)]
    # A client that drops our properties: the same phone link comes back, once.
    user.put("trip.ics", ics.event(uid="dial-trip-1", categories="Audio"))
    third = user.get("trip.ics").text
    assert [str(c) for c in phone_and_video(third)] == [str(phone), str(audio)]
    assert str(ics.vevents(third)[0]["DESCRIPTION"]).count(DIALIN) == 1
