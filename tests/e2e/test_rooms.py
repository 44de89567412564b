"""A Visio/Audio event PUT by any client becomes a room: the core journey."""

from __future__ import annotations

import requests

from tests.e2e.conftest import DavUser
from tests.support import ics


def test_visio_event_gets_join_link_and_room(user: DavUser) -> None:
    # Years ahead: a meeting already over shows its closed page, not its date.
    body = ics.event(
        uid="comite-1",
        categories="Travail,Visio",
        start="20301203T100000",
        end="20301203T113000",
    )
    r = user.put("comite.ics", body)
    assert r.status_code == 201
    assert "ETag" not in r.headers, "a rewritten event must not get a strong ETag"

    stored = user.get("comite.ics").text
    ev = ics.vevents(stored)[0]
    (conf,) = ics.conferences(ev)
    assert conf.params["FEATURE"] in (["AUDIO", "VIDEO"], "AUDIO,VIDEO")
    assert conf.params["LABEL"] == "Rejoindre la réunion"
    link = str(conf)
    assert link.startswith(user.stack.web_url + "j/")
    assert str(ev["URL"]) == link and str(ev["LOCATION"]) == link
    assert link in str(ev["DESCRIPTION"])
    assert str(ev["X-VISIO-ROOM-NUMBER"]).isdigit()
    assert "tel:" not in stored and "téléphone" not in stored.lower()

    page = requests.get(link, timeout=10)
    assert page.status_code == 200
    assert "Comité technique" in page.text
    assert "mardi 3 décembre 2030, 10:00 – 11:30 (Europe/Paris)" in page.text


def test_audio_event_is_audio_only(user: DavUser) -> None:
    user.put("a.ics", ics.event(categories="audioconférence"))
    (conf,) = ics.conferences(ics.vevents(user.get("a.ics").text)[0])
    assert conf.params["FEATURE"] == "AUDIO"


def test_plain_event_untouched_and_client_data_kept(user: DavUser) -> None:
    extra = (
        "X-FOO:a,b,c\n"
        "X-APPLE-TRAVEL-START;VALUE=URI:geo:48.1,-1.6\n"
        "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+33123456789,,123456789%23"
    )
    user.put("p.ics", ics.event(categories="Travail", summary="Déjeuner, salle 2", extra=extra))
    stored = user.get("p.ics").text
    ev = ics.vevents(stored)[0]
    assert str(ev["X-FOO"]) == "a,b,c"
    assert str(ev["X-APPLE-TRAVEL-START"]) == "geo:48.1,-1.6"
    assert [str(c) for c in ics.conferences(ev)] == ["tel:+33123456789,,123456789%23"]
    assert str(ev["SUMMARY"]) == "Déjeuner, salle 2"
    assert "X-VISIO-ROOM" not in ev and "URL" not in ev


def test_same_room_through_edits_and_stale_copies(user: DavUser) -> None:
    user.put("e.ics", ics.event(uid="edit-1"))
    first = user.get("e.ics").text
    link = ics.join_link(first)
    number = str(ics.vevents(first)[0]["X-VISIO-ROOM-NUMBER"])

    # A client that re-PUTs its old copy, without our properties.
    user.put("e.ics", ics.event(uid="edit-1"))
    # An edit of time and title (years ahead: the page of a meeting over shows no time).
    r = user.put(
        "e.ics",
        ics.event(
            uid="edit-1", summary="Comité déplacé", start="20301203T140000", end="20301203T153000"
        ),
    )
    assert r.status_code == 204
    stored = user.get("e.ics").text
    ev = ics.vevents(stored)[0]
    assert ics.join_link(stored) == link
    assert str(ev["X-VISIO-ROOM-NUMBER"]) == number
    assert str(ev["DESCRIPTION"]).count("~~~~~~~~~~ Visio") == 1
    page = requests.get(link, timeout=10).text
    assert "Comité déplacé" in page and "14:00 – 15:30" in page


def test_put_back_unchanged_is_idempotent(user: DavUser) -> None:
    user.put("i.ics", ics.event(extra="DESCRIPTION:Ordre du jour\\n1. budget"))
    stored = user.get("i.ics").text
    r = user.put("i.ics", stored)
    assert r.status_code == 204
    assert r.headers.get("ETag"), "an unchanged body keeps its ETag"
    again = user.get("i.ics")
    assert again.text == stored
    assert again.headers["ETag"] == r.headers["ETag"]
    assert "Ordre du jour\\n1. budget" in stored.replace("\r\n ", "")


def test_overrides_are_rewritten_too(user: DavUser) -> None:
    override = (
        "BEGIN:VEVENT\nUID:weekly-1\nDTSTAMP:20261130T090000Z\n"
        "RECURRENCE-ID;TZID=Europe/Paris:20261210T100000\n"
        "DTSTART;TZID=Europe/Paris:20261210T110000\nDTEND;TZID=Europe/Paris:20261210T120000\n"
        "SUMMARY:Réunion hebdo (décalée)\nEND:VEVENT"
    )
    user.put(
        "w.ics",
        ics.event(
            uid="weekly-1", summary="Réunion hebdo", extra="RRULE:FREQ=WEEKLY", overrides=override
        ),
    )
    master, moved = ics.vevents(user.get("w.ics").text)
    assert "RECURRENCE-ID" in moved
    assert ics.conferences(master) and [str(c) for c in ics.conferences(master)] == [
        str(c) for c in ics.conferences(moved)
    ]
    assert master["X-VISIO-ROOM"] == moved["X-VISIO-ROOM"]


def test_removing_the_category_retires_the_room(user: DavUser) -> None:
    user.put("r.ics", ics.event(uid="retire-1", extra="DESCRIPTION:Agenda"))
    link = ics.join_link(user.get("r.ics").text)
    never = link[:-4] + ("AAAA" if not link.endswith("AAAA") else "BBBB")
    user.put("r.ics", user.get("r.ics").text.replace("CATEGORIES:Visio", "CATEGORIES:Travail"))
    stored = user.get("r.ics").text
    ev = ics.vevents(stored)[0]
    assert "CONFERENCE" not in ev and "X-VISIO-ROOM" not in ev and "URL" not in ev
    assert str(ev["DESCRIPTION"]) == "Agenda"
    retired, unknown = requests.get(link, timeout=10), requests.get(never, timeout=10)
    assert retired.status_code == unknown.status_code == 404
    assert retired.text == unknown.text


def test_delete_retires_the_room(user: DavUser) -> None:
    user.put("d.ics", ics.event())
    link = ics.join_link(user.get("d.ics").text)
    assert requests.get(link, timeout=10).status_code == 200
    assert user.session.delete(user.url("d.ics"), timeout=10).status_code in (200, 204)
    assert requests.get(link, timeout=10).status_code == 404


def test_move_keeps_the_room(user: DavUser) -> None:
    user.put("m.ics", ics.event(uid="move-1"))
    link = ics.join_link(user.get("m.ics").text)
    other = user.make_calendar("other")
    r = user.session.request(
        "MOVE", user.url("m.ics"), headers={"Destination": other + "m.ics"}, timeout=10
    )
    assert r.status_code in (201, 204)
    assert requests.get(link, timeout=10).status_code == 200
    # Re-PUT in the new calendar without our properties: same link.
    user.session.put(
        other + "m.ics",
        data=ics.event(uid="move-1").encode(),
        headers={"Content-Type": "text/calendar"},
        timeout=10,
    )
    assert ics.join_link(user.session.get(other + "m.ics", timeout=10).text) == link
