"""Bad or hostile input gets a clear refusal, changes nothing and never stalls the server."""

from __future__ import annotations

import threading

import pytest
import requests

from tests.e2e.conftest import DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack

MAX_CONTENT_LENGTH = 10_000_000  # radicale.conf [server] max_content_length


def fold(line: str) -> str:
    """RFC 5545 §3.1 folding at 75 octets, never inside a UTF-8 sequence.

    Lines are joined with a bare LF: `ics.event` turns every line break into CRLF.
    """
    out: list[str] = []
    current, size, limit = "", 0, 75
    for ch in line:
        n = len(ch.encode())
        if size + n > limit:
            out.append(current)
            current, size, limit = " ", 1, 75
        current += ch
        size += n
    out.append(current)
    return "\n".join(out)


def room_count(stack: Stack) -> int:
    with stack.db() as db, db.reading() as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM rooms").fetchone()
    return int(count)


def assert_has_live_room(user: DavUser, href: str) -> str:
    stored = user.get(href)
    assert stored.status_code == 200
    link = ics.join_link(stored.text)
    assert str(ics.vevents(stored.text)[0]["X-VISIO-ROOM-NUMBER"]).isdigit()
    assert requests.get(link, timeout=10).status_code == 200
    return stored.text


MALFORMED = {
    "vevent-never-closed": "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nEND:VCALENDAR\r\n",
    "visio-vevent-never-closed": ics.event(uid="malformed-1").replace("END:VEVENT\r\n", ""),
    "visio-date-not-a-date": ics.event(uid="malformed-2").replace(
        "DTSTART;TZID=Europe/Paris:20261203T100000", "DTSTART;TZID=Europe/Paris:demain matin"
    ),
    "not-icalendar": "Réunion demain à 10 h, catégorie Visio\r\n",
}


@pytest.mark.parametrize("body", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_icalendar_is_refused_and_changes_nothing(
    stack: Stack, user: DavUser, body: str
) -> None:
    rooms_before = room_count(stack)
    r = user.put("bad.ics", body)
    assert r.status_code == 400, r.text
    assert user.get("bad.ics").status_code == 404
    assert room_count(stack) == rooms_before


def test_body_above_the_size_limit_is_refused_with_413(stack: Stack, user: DavUser) -> None:
    padding = "x" * (MAX_CONTENT_LENGTH + 1000)
    body = ics.event(uid="huge-1", extra=fold("DESCRIPTION:" + padding))
    assert len(body.encode()) > MAX_CONTENT_LENGTH
    rooms_before = room_count(stack)
    try:
        r = user.put("huge.ics", body)
        status = r.status_code
    except requests.ConnectionError as e:  # the server may answer and close before reading it all
        pytest.fail(f"no HTTP answer to an oversize PUT: {e!r}")
    assert status == 413
    assert user.get("huge.ics").status_code == 404
    assert room_count(stack) == rooms_before


def test_recurrence_with_too_many_occurrences_is_refused(stack: Stack, user: DavUser) -> None:
    rooms_before = room_count(stack)
    r = user.put("count.ics", ics.event(uid="count-1", extra="RRULE:FREQ=DAILY;COUNT=20000"))
    assert 400 <= r.status_code < 500, r.status_code
    assert user.get("count.ics").status_code == 404
    assert room_count(stack) == rooms_before


def test_unbounded_secondly_recurrence_is_refused_without_stalling(
    stack: Stack, user: DavUser
) -> None:
    user.put("before.ics", ics.event(uid="before-1", categories="Travail", summary="Témoin"))
    rooms_before = room_count(stack)
    body = ics.event(uid="secondly-1", extra="RRULE:FREQ=SECONDLY;UNTIL=21000101T000000Z")
    r = user.session.put(  # raises ReadTimeout if the server is still expanding after 30 s
        user.url("secondly.ics"),
        data=body.encode(),
        timeout=30,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert 400 <= r.status_code < 500, r.status_code
    assert user.get("secondly.ics").status_code == 404
    assert room_count(stack) == rooms_before
    after = user.get("before.ics")
    assert after.status_code == 200 and "Témoin" in after.text


def test_weekly_recurrence_without_end_gets_a_room(user: DavUser) -> None:
    r = user.put(
        "weekly.ics",
        ics.event(uid="weekly-open-1", summary="Point hebdo", extra="RRULE:FREQ=WEEKLY;BYDAY=TH"),
    )
    assert r.status_code == 201, r.text
    stored = assert_has_live_room(user, "weekly.ics")
    assert "RRULE:FREQ=WEEKLY;BYDAY=TH" in stored


def test_ten_thousand_character_category_still_gets_a_room(user: DavUser) -> None:
    long_category = ("Catégorie très longue " * 500)[:10_000].strip()
    extra = fold("CATEGORIES:" + long_category) + "\nCATEGORIES:Visio"
    body = ics.event(uid="longcat-1", categories=None, extra=extra)
    r = user.put("longcat.ics", body)
    assert r.status_code == 201, r.text
    stored = assert_has_live_room(user, "longcat.ics")
    categories = [str(c) for c in ics.vevents(stored)[0].categories]
    assert long_category in categories and "Visio" in categories


def big_attendee_event(uid: str, count: int) -> str:
    lines = [
        fold(
            f"ATTENDEE;CN=Invité {i:04d};ROLE=REQ-PARTICIPANT;PARTSTAT=NEEDS-ACTION;"
            f"RSVP=TRUE:mailto:invite{i:04d}@example.org"
        )
        for i in range(count)
    ]
    organizer = "ORGANIZER;CN=Organisatrice:mailto:orga@example.org"
    return ics.event(uid=uid, summary="Assemblée générale", extra="\n".join([organizer, *lines]))


def test_five_thousand_attendees_get_a_room_without_blocking_others(
    stack: Stack, user: DavUser
) -> None:
    other = new_user(stack)
    created = other.put("small.ics", ics.event(uid="small-1", summary="Petit point"))
    assert created.status_code == 201
    body = big_attendee_event("assemblee-1", 5000)
    outcome: dict[str, requests.Response | BaseException] = {}

    def put_big() -> None:
        try:
            outcome["put"] = user.put("assemblee.ics", body)
        except BaseException as e:
            outcome["put"] = e

    worker = threading.Thread(target=put_big)
    worker.start()
    try:
        small = other.get("small.ics")
    finally:
        worker.join(timeout=120)
    assert not worker.is_alive(), "the 5,000-attendee PUT never finished"
    assert small.status_code == 200 and "Petit point" in small.text

    put = outcome["put"]
    assert isinstance(put, requests.Response), put
    assert put.status_code == 201, put.text
    stored = assert_has_live_room(user, "assemblee.ics")
    assert len(ics.vevents(stored)[0].attendees) == 5000


INJECTED_SUMMARY = (
    "Ligne 1\\nEND:VEVENT\\nBEGIN:VEVENT\\nUID:pirate\\nSUMMARY:Réunion 🎉 café — "
    "<b>gras</b>\\, \\; fin"
)
EXPECTED_SUMMARY = (
    "Ligne 1\nEND:VEVENT\nBEGIN:VEVENT\nUID:pirate\nSUMMARY:Réunion 🎉 café — <b>gras</b>, ; fin"
)


def test_escaped_newlines_and_unicode_in_summary_round_trip(user: DavUser) -> None:
    r = user.put("inj.ics", ics.event(uid="inject-1", summary=INJECTED_SUMMARY))
    assert r.status_code == 201, r.text
    stored = assert_has_live_room(user, "inj.ics")
    (ev,) = ics.vevents(stored)  # still exactly one event: nothing was injected
    assert str(ev["UID"]) == "inject-1"
    assert str(ev["SUMMARY"]) == EXPECTED_SUMMARY
    unfolded = stored.replace("\r\n ", "").splitlines()
    assert not any(line.startswith(("UID:pirate", "SUMMARY:Réunion")) for line in unfolded)
    assert sum(line == "BEGIN:VEVENT" for line in unfolded) == 1

    page = requests.get(ics.join_link(stored), timeout=10)
    assert page.status_code == 200
    assert "Réunion 🎉 café — &lt;b&gt;gras&lt;/b&gt;, ; fin" in page.text
    assert "<b>gras</b>" not in page.text


def test_rooms_list_keeps_a_multiline_summary_on_one_line(stack: Stack, user: DavUser) -> None:
    forged = "Budget\\n999999999\tvideo\tceo\tRéunion inventée\t-"
    r = user.put("forged.ics", ics.event(uid="forge-1", summary=forged))
    assert r.status_code == 201, r.text
    number = str(ics.vevents(user.get("forged.ics").text)[0]["X-VISIO-ROOM-NUMBER"])
    listing = stack.visio("rooms", "list").stdout.splitlines()
    assert all(len(line.split("\t")) == 6 for line in listing), "\n".join(listing)
    assert not any(line.startswith("999999999") for line in listing)
    (mine,) = [line for line in listing if line.startswith(number + "\t")]
    assert "Budget" in mine
