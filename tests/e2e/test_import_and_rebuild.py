"""Whole-calendar imports, `visio rooms rebuild` and a server restart keep every room."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import requests

from tests.e2e.conftest import DavUser
from tests.support import ics
from tests.support.stack import Stack

EVENTS = 50
PROPFIND_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:propfind xmlns:d="DAV:"><d:prop><d:getetag/></d:prop></d:propfind>'
)


def import_calendar(uids: list[str], prefix: str) -> str:
    """One VCALENDAR holding one VEVENT per UID; even-numbered ones are Visio meetings."""
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Visio tests//EN"]
    for uid in uids:
        n = int(uid.rsplit("-", 1)[1])
        hour = 8 + n % 10
        day = 1 + n // 10
        lines += [
            "BEGIN:VEVENT",
            f"UID:{uid}",
            "DTSTAMP:20261130T090000Z",
            f"DTSTART;TZID=Europe/Paris:202612{day:02d}T{hour:02d}0000",
            f"DTEND;TZID=Europe/Paris:202612{day:02d}T{hour:02d}3000",
            f"SUMMARY:{prefix} n°{n}",
            "CATEGORIES:Travail,Visio" if n % 2 == 0 else "CATEGORIES:Travail",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "\r\n".join(lines) + "\r\n"


def uids_for(prefix: str) -> list[str]:
    return [f"{prefix}-{n:02d}" for n in range(EVENTS)]


def is_visio(uid: str) -> bool:
    return int(uid.rsplit("-", 1)[1]) % 2 == 0


def put_calendar(user: DavUser, body: str) -> requests.Response:
    return user.session.put(
        user.calendar,
        data=body.encode(),
        timeout=120,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )


def stored_events(user: DavUser) -> dict[str, tuple[str, str]]:
    """UID -> (URL, stored text) of every event in the user's calendar, as a client lists them."""
    r = user.session.request(
        "PROPFIND",
        user.calendar,
        data=PROPFIND_BODY,
        timeout=60,
        headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
    )
    assert r.status_code == 207, r.text
    hrefs = [
        e.text
        for e in ET.fromstring(r.content).iter("{DAV:}href")
        if e.text and e.text.endswith(".ics")
    ]
    result: dict[str, tuple[str, str]] = {}
    for href in hrefs:
        url = urljoin(user.calendar, href)
        got = user.session.get(url, timeout=30)
        assert got.status_code == 200, href
        (ev,) = ics.vevents(got.text)
        result[str(ev["UID"])] = (url, got.text)
    return result


def links_and_numbers(events: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """UID -> (join link, room number) of the Visio events."""
    result = {}
    for uid, (_, text) in events.items():
        if is_visio(uid):
            ev = ics.vevents(text)[0]
            result[uid] = (ics.join_link(text), str(ev["X-VISIO-ROOM-NUMBER"]))
    return result


def delete_registry_rows(stack: Stack) -> None:
    with stack.db() as db, db.transaction() as conn:
        conn.execute("DELETE FROM rooms")


def test_import_gives_each_visio_event_its_own_room(user: DavUser) -> None:
    uids = uids_for("imp")
    r = put_calendar(user, import_calendar(uids, "Import"))
    assert r.status_code in (200, 201, 204), r.text

    events = stored_events(user)
    assert sorted(events) == uids
    rooms = links_and_numbers(events)
    assert len(rooms) == EVENTS // 2
    numbers = [number for _, number in rooms.values()]
    assert len(set(numbers)) == len(numbers), "room numbers must be distinct"
    assert all(n.isdigit() and len(n) >= 9 and n[0] != "0" for n in numbers)
    assert len({link for link, _ in rooms.values()}) == len(rooms)
    for uid, (link, _) in rooms.items():
        assert link.startswith(user.stack.web_url + "j/")
        page = requests.get(link, timeout=10)
        assert page.status_code == 200, uid
        assert f"Import n°{int(uid[-2:])}<" in page.text
    for uid, (_, text) in events.items():
        if not is_visio(uid):
            ev = ics.vevents(text)[0]
            assert not ics.conferences(ev) and "X-VISIO-ROOM" not in ev and "URL" not in ev
            assert "LOCATION" not in ev and "/j/" not in text


def test_reimport_keeps_the_links(user: DavUser) -> None:
    body = import_calendar(uids_for("again"), "Réimport")
    assert put_calendar(user, body).status_code in (200, 201, 204)
    before = links_and_numbers(stored_events(user))

    r = put_calendar(user, body)
    assert r.status_code in (200, 201, 204), r.text
    after = links_and_numbers(stored_events(user))
    assert after == before
    for link, _ in after.values():
        assert requests.get(link, timeout=10).status_code == 200


def test_import_without_an_event_retires_its_room(user: DavUser) -> None:
    uids = uids_for("drop")
    assert put_calendar(user, import_calendar(uids, "Retrait")).status_code in (200, 201, 204)
    before = links_and_numbers(stored_events(user))
    dropped = "drop-10"
    gone_link, _ = before[dropped]
    assert requests.get(gone_link, timeout=10).status_code == 200

    remaining = [u for u in uids if u != dropped]
    r = put_calendar(user, import_calendar(remaining, "Retrait"))
    assert r.status_code in (200, 201, 204), r.text
    events = stored_events(user)
    assert sorted(events) == remaining
    assert requests.get(gone_link, timeout=10).status_code == 404
    after = links_and_numbers(events)
    assert after == {u: v for u, v in before.items() if u != dropped}
    for link, _ in after.values():
        assert requests.get(link, timeout=10).status_code == 200


def test_rebuild_recreates_the_registry_with_the_same_links_and_numbers(
    stack: Stack, user: DavUser
) -> None:
    uids = uids_for("reb")
    assert put_calendar(user, import_calendar(uids, "Reconstruit")).status_code in (200, 201, 204)
    events = stored_events(user)
    rooms = links_and_numbers(events)

    delete_registry_rows(stack)
    for link, _ in rooms.values():
        assert requests.get(link, timeout=10).status_code == 404
    assert stack.visio("rooms", "list").stdout.strip() == ""

    done = stack.visio("rooms", "rebuild", check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "rebuilt" in done.stdout
    for uid, (link, _) in rooms.items():
        assert requests.get(link, timeout=10).status_code == 200, uid

    listing = stack.visio("rooms", "list").stdout.splitlines()
    for uid, (_, number) in rooms.items():
        summary = f"Reconstruit n°{int(uid[-2:])}"
        assert any(
            line.split("\t")[0] == number and summary in line.split("\t") for line in listing
        ), f"no line for room {number} ({summary}) in:\n" + "\n".join(listing)

    # The rebuilt rows are the live ones: a client's old copy, re-PUT without our
    # properties, gets the very same link and number back.
    uid = "reb-04"
    url = events[uid][0]
    r = user.session.put(
        url,
        data=ics.event(uid=uid, summary="Reconstruit n°4").encode(),
        timeout=30,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert r.status_code == 204, r.text
    stored = user.session.get(url, timeout=30).text
    assert ics.join_link(stored) == rooms[uid][0]
    assert str(ics.vevents(stored)[0]["X-VISIO-ROOM-NUMBER"]) == rooms[uid][1]


def test_links_survive_a_restart(stack: Stack, user: DavUser) -> None:
    user.put("restart.ics", ics.event(uid="restart-1", summary="Après redémarrage"))
    first = user.get("restart.ics").text
    link = ics.join_link(first)
    number = str(ics.vevents(first)[0]["X-VISIO-ROOM-NUMBER"])

    stack.restart()

    page = requests.get(link, timeout=10)
    assert page.status_code == 200
    assert "Après redémarrage" in page.text
    r = user.put("restart.ics", ics.event(uid="restart-1", summary="Après redémarrage"))
    assert r.status_code == 204
    stored = user.get("restart.ics").text
    assert ics.join_link(stored) == link
    assert str(ics.vevents(stored)[0]["X-VISIO-ROOM-NUMBER"]) == number
    assert requests.get(link, timeout=10).status_code == 200
