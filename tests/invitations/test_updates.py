"""Updates and cancellations follow iTIP: who gets what after each kind of change."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar
import pytest
import requests

from tests.e2e.conftest import DavUser
from tests.invitations.conftest import account, address, attendee, uid
from tests.invitations.mail import Mail, Sink, by_recipient, drained
from tests.invitations.test_structure import join_button
from tests.support import ics
from tests.support.stack import Stack

PARIS = ZoneInfo("Europe/Paris")
ANNE = ("anne@example.com", "Anne Leroy")
BRUNO = ("bruno@example.net", "Bruno Roux")
CHLOE = ("chloe@example.com", "Chloé Faure")
WEEKLY = "RRULE:FREQ=WEEKLY;COUNT=5"  # Thursdays 3, 10, 17, 24 and 31 December 2026


def paris(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2026, 12, day, hour, 0, tzinfo=PARIS)


@pytest.fixture(scope="module")
def alice(stack: Stack) -> DavUser:
    return account(stack, "Alice Martin")


def lines(*people: tuple[str, str], **params: str) -> list[str]:
    return [attendee(a, cn, **params) for a, cn in people]


def put(user: DavUser, href: str, body: str) -> None:
    r = user.put(href, body)
    assert r.status_code in (201, 204), r.text


def changed(
    stack: Stack, sink: Sink, u: str, before: int, expect: set[str]
) -> dict[str, list[Mail]]:
    """Messages about `u` after the first `before`, once `expect` all got one and none wait."""
    if expect:
        sink.wait(
            u,
            lambda ms: expect <= {m.to for m in ms[before:]},
            what=f"new messages to {sorted(expect)}",
        )
    drained(stack)
    return by_recipient(sink.about(u)[before:])


def create(
    stack: Stack, sink: Sink, alice: DavUser, extra: list[str], expect: set[str], **kw: str
) -> tuple[str, str, dict[str, Mail]]:
    """PUT a new event; returns its UID, href and the first message of each recipient."""
    u = uid()
    href = f"{u}.ics"
    put(alice, href, ics.event(uid=u, extra="\n".join(extra), **kw))
    got = changed(stack, sink, u, 0, expect | {address(alice)})
    assert all(len(ms) == 1 for ms in got.values()), got
    return u, href, {r: ms[0] for r, ms in got.items()}


def start_of(mail: Mail) -> dt.datetime:
    (ev,) = mail.vevents
    return ev["DTSTART"].dt  # type: ignore[no-any-return]


def cancelled(mail: Mail) -> bool:
    return mail.method == "CANCEL" and all(
        str(ev.get("STATUS")).upper() == "CANCELLED" for ev in mail.vevents
    )


def test_reschedule_sends_request_with_higher_sequence_and_same_link(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    people = [ANNE, BRUNO]
    u, href, first = create(stack, sink, alice, lines(*people), {a for a, _ in people})
    before = len(sink.about(u))

    # The client moves the meeting to the afternoon without touching SEQUENCE.
    body = ics.event(
        uid=u, start="20261203T140000", end="20261203T153000", extra="\n".join(lines(*people))
    )
    assert "SEQUENCE" not in body
    put(alice, href, body)
    new = changed(stack, sink, u, before, {a for a, _ in people})

    for a, _ in people:
        (mail,) = new[a]
        assert mail.method == "REQUEST"
        assert mail.sequence > first[a].sequence
        assert start_of(mail) == paris(3, 14)
        assert "14:00" in mail.text and "15:30" in mail.text
        assert join_button(mail) == join_button(first[a]), "the link must not change"
    (stored,) = ics.vevents(alice.get(href).text)
    assert int(stored["SEQUENCE"]) == new[ANNE[0]][0].sequence


def test_partstat_only_edit_by_the_organizer_sends_nothing(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    people = [ANNE, BRUNO]
    u, href, _ = create(stack, sink, alice, lines(*people), {a for a, _ in people})
    before = len(sink.about(u))

    # Anne answered by phone: the organizer records it in their own copy.
    cal = icalendar.Calendar.from_ical(alice.get(href).text)
    (ev,) = cal.walk("VEVENT")
    sequence = int(ev.get("SEQUENCE", 0))
    for a in ev["ATTENDEE"]:
        if str(a).lower() == f"mailto:{ANNE[0]}":
            a.params["PARTSTAT"] = "ACCEPTED"
    put(alice, href, cal.to_ical().decode())

    assert changed(stack, sink, u, before, set()) == {}
    (stored,) = ics.vevents(alice.get(href).text)
    partstat = {str(a).lower(): str(a.params.get("PARTSTAT")) for a in stored["ATTENDEE"]}
    assert partstat[f"mailto:{ANNE[0]}"] == "ACCEPTED"
    assert int(stored.get("SEQUENCE", 0)) == sequence, "a PARTSTAT edit is not significant"


def test_added_attendee_alone_gets_a_request(stack: Stack, sink: Sink, alice: DavUser) -> None:
    u, href, _ = create(stack, sink, alice, lines(ANNE, BRUNO), {ANNE[0], BRUNO[0]})
    before = len(sink.about(u))

    put(alice, href, ics.event(uid=u, extra="\n".join(lines(ANNE, BRUNO, CHLOE))))
    new = changed(stack, sink, u, before, {CHLOE[0]})

    assert set(new) == {CHLOE[0]}, {r: [m.method for m in ms] for r, ms in new.items()}
    (mail,) = new[CHLOE[0]]
    assert mail.method == "REQUEST"
    (ev,) = mail.vevents
    assert f"mailto:{CHLOE[0]}" in [str(a).lower() for a in ev["ATTENDEE"]]
    assert join_button(mail).startswith(stack.web_url + "j/")


def test_removed_attendee_gets_a_cancel(stack: Stack, sink: Sink, alice: DavUser) -> None:
    u, href, _ = create(stack, sink, alice, lines(ANNE, BRUNO), {ANNE[0], BRUNO[0]})
    before = len(sink.about(u))

    put(alice, href, ics.event(uid=u, extra="\n".join(lines(ANNE))))
    new = changed(stack, sink, u, before, {BRUNO[0]})

    (mail,) = new[BRUNO[0]]
    assert cancelled(mail)
    (ev,) = mail.vevents
    assert "RECURRENCE-ID" not in ev
    assert f"mailto:{BRUNO[0]}" in [str(a).lower() for a in _list(ev["ATTENDEE"])]
    assert "annulée" in mail.text
    assert "Rejoindre" not in mail.html
    assert not any(m.method == "CANCEL" for m in new.get(ANNE[0], []))


def test_removed_attendee_link_is_revoked(stack: Stack, sink: Sink, alice: DavUser) -> None:
    u, href, first = create(stack, sink, alice, lines(ANNE, BRUNO), {ANNE[0], BRUNO[0]})
    anne_link, bruno_link = join_button(first[ANNE[0]]), join_button(first[BRUNO[0]])
    assert requests.get(bruno_link, timeout=10).status_code == 200, "works while invited"

    put(alice, href, ics.event(uid=u, extra="\n".join(lines(ANNE))))
    changed(stack, sink, u, len(first), {BRUNO[0]})
    assert requests.get(bruno_link, timeout=10).status_code == 404
    assert requests.get(anne_link, timeout=10).status_code == 200


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _override(u: str, day: int, start_hour: int, people: list[str], extra: str = "") -> str:
    return "\n".join(
        [
            "BEGIN:VEVENT",
            f"UID:{u}",
            "DTSTAMP:20261130T090000Z",
            f"RECURRENCE-ID;TZID=Europe/Paris:202612{day:02d}T100000",
            f"DTSTART;TZID=Europe/Paris:202612{day:02d}T{start_hour:02d}0000",
            f"DTEND;TZID=Europe/Paris:202612{day:02d}T{start_hour + 1:02d}3000",
            "SUMMARY:Comité technique",
            "CATEGORIES:Visio",
            *people,
            *([extra] if extra else []),
            "END:VEVENT",
        ]
    )


@pytest.fixture
def weekly(stack: Stack, sink: Sink, alice: DavUser) -> tuple[str, str, int]:
    u, href, first = create(stack, sink, alice, [*lines(ANNE, BRUNO), WEEKLY], {ANNE[0], BRUNO[0]})
    return u, href, len(first)


def test_occurrence_deleted_by_exdate_is_cancelled(
    stack: Stack, sink: Sink, alice: DavUser, weekly: tuple[str, str, int]
) -> None:
    u, href, before = weekly
    extra = [*lines(ANNE, BRUNO), WEEKLY, "EXDATE;TZID=Europe/Paris:20261210T100000"]
    put(alice, href, ics.event(uid=u, extra="\n".join(extra)))
    new = changed(stack, sink, u, before, {ANNE[0], BRUNO[0]})

    for a in (ANNE[0], BRUNO[0]):
        (mail,) = new[a]
        assert cancelled(mail), mail.method
        assert mail.recurrence_ids == [paris(10, 10)]
        assert "RRULE" not in mail.vevents[0]
        assert "séance a été annulée" in mail.text


def test_occurrence_cancelled_by_override_is_cancelled(
    stack: Stack, sink: Sink, alice: DavUser, weekly: tuple[str, str, int]
) -> None:
    u, href, before = weekly
    override = _override(u, 17, 10, lines(ANNE, BRUNO), "STATUS:CANCELLED")
    body = ics.event(uid=u, extra="\n".join([*lines(ANNE, BRUNO), WEEKLY]), overrides=override)
    put(alice, href, body)
    new = changed(stack, sink, u, before, {ANNE[0], BRUNO[0]})

    for a in (ANNE[0], BRUNO[0]):
        (mail,) = new[a]
        assert cancelled(mail), mail.method
        assert mail.recurrence_ids == [paris(17, 10)]


def test_moved_occurrence_sends_request_for_that_occurrence(
    stack: Stack, sink: Sink, alice: DavUser, weekly: tuple[str, str, int]
) -> None:
    u, href, before = weekly
    override = _override(u, 24, 14, lines(ANNE, BRUNO))
    body = ics.event(uid=u, extra="\n".join([*lines(ANNE, BRUNO), WEEKLY]), overrides=override)
    put(alice, href, body)
    new = changed(stack, sink, u, before, {ANNE[0], BRUNO[0]})

    for a in (ANNE[0], BRUNO[0]):
        (mail,) = new[a]
        assert mail.method == "REQUEST"
        assert mail.recurrence_ids == [paris(24, 10)]
        assert start_of(mail) == paris(24, 14)
        assert "14:00" in mail.text


def test_delete_cancels_for_everyone(stack: Stack, sink: Sink, alice: DavUser) -> None:
    u, href, first = create(stack, sink, alice, lines(ANNE, BRUNO), {ANNE[0], BRUNO[0]})
    r = alice.session.delete(alice.url(href), timeout=30)
    assert r.status_code in (200, 204)
    everyone = {ANNE[0], BRUNO[0], address(alice)}
    new = changed(stack, sink, u, len(first), everyone)

    assert set(new) == everyone
    for a in everyone:
        (mail,) = new[a]
        assert cancelled(mail), (a, mail.method)
        assert mail.recurrence_ids == []
        assert mail.sequence > first[a].sequence
        assert "réunion a été annulée" in mail.text


def test_schedule_agent_client_attendee_gets_nothing(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    people = [*lines(ANNE), *lines(BRUNO, schedule_agent="CLIENT")]
    u, href, first = create(stack, sink, alice, people, {ANNE[0]})
    assert BRUNO[0] not in first

    body = ics.event(uid=u, start="20261203T140000", end="20261203T153000", extra="\n".join(people))
    put(alice, href, body)
    new = changed(stack, sink, u, len(first), {ANNE[0]})
    assert BRUNO[0] not in new
    assert [m.method for m in new[ANNE[0]]] == ["REQUEST"]
    assert all(m.to != BRUNO[0] for m in sink.about(u))
