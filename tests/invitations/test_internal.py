"""Attendees with an account here: the event lands in their calendar, their answer comes back."""

from __future__ import annotations

from dataclasses import dataclass

import caldav
import icalendar
import pytest
from caldav.davclient import DAVClient

from tests.e2e.conftest import PASSWORD, DavUser
from tests.invitations.conftest import account, address, attendee, uid
from tests.invitations.mail import Mail, Sink, by_recipient, drained
from tests.support import ics
from tests.support.stack import Stack, wait_for

DAVE = "dave@example.com"  # external


@dataclass
class Meeting:
    alice: DavUser
    bob: DavUser  # has a calendar of his own, not named "calendar"
    carol: DavUser  # has no calendar at all
    uid: str
    href: str
    room_link: str
    mails: dict[str, list[Mail]]


def client(stack: Stack, user: DavUser) -> DAVClient:
    return DAVClient(url=stack.caldav_url, username=user.login, password=PASSWORD)


def find(stack: Stack, user: DavUser, u: str) -> tuple[caldav.Calendar, caldav.Event]:
    """The calendar holding event `u` among the user's calendars, as a CalDAV client sees them."""
    for cal in client(stack, user).principal().calendars():
        try:
            return cal, cal.event_by_uid(u)
        except caldav.lib.error.NotFoundError:
            continue
    raise AssertionError(f"{u} is in none of {user.login}'s calendars")


def partstats(text: str) -> dict[str, str]:
    (ev,) = ics.vevents(text)
    return {
        str(a).lower().removeprefix("mailto:"): str(a.params.get("PARTSTAT", "NEEDS-ACTION"))
        for a in ev["ATTENDEE"]
    }


@pytest.fixture(scope="module")
def meeting(stack: Stack, sink: Sink) -> Meeting:
    alice = account(stack, "Alice Martin")
    bob = account(stack, "Bob Durand", calendar=False)
    bob.calendar = bob.make_calendar("travail")
    carol = account(stack, "Carole Petit", calendar=False)
    u = uid()
    people = [
        attendee(address(bob), "Bob Durand"),
        attendee(address(carol), "Carole Petit"),
        attendee(DAVE, "Dave"),
    ]
    r = alice.put("point.ics", ics.event(uid=u, summary="Point projet", extra="\n".join(people)))
    assert r.status_code == 201, r.text
    sink.wait(u, lambda ms: {DAVE, address(alice)} <= {m.to for m in ms}, what="invitations")
    drained(stack)
    room_link = ics.join_link(alice.get("point.ics").text)
    return Meeting(alice, bob, carol, u, "point.ics", room_link, by_recipient(sink.about(u)))


def test_event_delivered_into_the_attendees_first_calendar(stack: Stack, meeting: Meeting) -> None:
    cal, event = find(stack, meeting.bob, meeting.uid)
    assert str(cal.url).rstrip("/").endswith(f"/{meeting.bob.login}/travail")
    text = event.data
    assert partstats(text)[address(meeting.bob)] == "NEEDS-ACTION"
    assert "SCHEDULE-STATUS" not in text.replace("\r\n ", ""), "the organizer's bookkeeping"

    link = ics.join_link(text)
    assert link.startswith(stack.web_url + "j/")
    assert link != meeting.room_link
    assert meeting.room_link not in text.replace("\r\n ", ""), "no room link in Bob's copy"
    for mail in meeting.mails.get(address(meeting.bob), []):
        assert ics.join_link(mail.cal.to_ical().decode()) == link  # type: ignore[union-attr]


def test_attendee_without_calendar_gets_one_created(stack: Stack, meeting: Meeting) -> None:
    cal, event = find(stack, meeting.carol, meeting.uid)
    assert str(cal.url).rstrip("/").endswith(f"/{meeting.carol.login}/calendar")
    text = event.data
    assert partstats(text)[address(meeting.carol)] == "NEEDS-ACTION"
    carol_link = ics.join_link(text)
    bob_link = ics.join_link(find(stack, meeting.bob, meeting.uid)[1].data)
    assert carol_link not in (meeting.room_link, bob_link)


def test_organizer_copy_shows_internal_attendees_delivered(meeting: Meeting) -> None:
    (ev,) = ics.vevents(meeting.alice.get(meeting.href).text)
    status = {
        str(a).lower().removeprefix("mailto:"): str(a.params.get("SCHEDULE-STATUS"))
        for a in ev["ATTENDEE"]
    }
    assert status == {address(meeting.bob): "1.2", address(meeting.carol): "1.2", DAVE: "1.1"}


def test_attendee_accepts_in_own_calendar_and_organizer_sees_it(
    stack: Stack, sink: Sink, meeting: Meeting
) -> None:
    before = len(sink.about(meeting.uid))
    etag_before = meeting.alice.get(meeting.href).headers.get("ETag")

    # Bob clicks "Accept" in his calendar app: it PUTs his copy back with his PARTSTAT.
    _, event = find(stack, meeting.bob, meeting.uid)
    cal = icalendar.Calendar.from_ical(event.data)
    for ev in cal.walk("VEVENT"):
        for a in ev["ATTENDEE"]:
            if str(a).lower() == f"mailto:{address(meeting.bob)}":
                a.params["PARTSTAT"] = "ACCEPTED"
    event.data = cal.to_ical().decode()
    event.save()

    wait_for(
        lambda: partstats(meeting.alice.get(meeting.href).text)[address(meeting.bob)] == "ACCEPTED",
        what="Bob's answer on Alice's copy",
    )
    fetched = meeting.alice.get(meeting.href)
    assert partstats(fetched.text) == {
        address(meeting.bob): "ACCEPTED",
        address(meeting.carol): "NEEDS-ACTION",
        DAVE: "NEEDS-ACTION",
    }
    if etag_before and fetched.headers.get("ETag"):
        assert fetched.headers["ETag"] != etag_before, "Alice's client must see a change"
    assert partstats(find(stack, meeting.bob, meeting.uid)[1].data)[address(meeting.bob)] == (
        "ACCEPTED"
    )

    drained(stack)
    new = by_recipient(sink.about(meeting.uid)[before:])
    assert not set(new) & {DAVE, address(meeting.carol)}, {
        r: [m.method for m in ms] for r, ms in new.items()
    }
