"""An organizer saves an event with attendees: what each person finds in their mailbox."""

from __future__ import annotations

from dataclasses import dataclass
from html.parser import HTMLParser

import icalendar
import pytest
import requests

from tests.e2e.conftest import DavUser
from tests.invitations.conftest import account, address, attendee, organizer_line, uid
from tests.invitations.mail import MAIL_FROM, Mail, Sink, by_recipient, drained
from tests.support import ics
from tests.support.stack import Stack

PEOPLE = [("berenice@example.com", "Bérénice Dupont"), ("carl@example.net", "Carl Petit")]
TITLE = "Comité technique"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._href, self._text = dict(attrs).get("href") or "", ""

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, self._text.strip()))
            self._href = None


def html_links(html: str) -> list[tuple[str, str]]:
    parser = _Links()
    parser.feed(html)
    return parser.links


def join_button(mail: Mail) -> str:
    found = [href for href, text in html_links(mail.html) if text == "Rejoindre la réunion"]
    assert len(found) == 1, mail.html
    return found[0]


def calendar_link(mail: Mail) -> str:
    assert mail.cal is not None
    return ics.join_link(mail.cal.to_ical().decode())


@dataclass
class Sent:
    organizer: DavUser
    uid: str
    stored: str  # the organizer's copy, as their client fetches it
    mails: dict[str, list[Mail]]  # by recipient

    @property
    def organizer_address(self) -> str:
        return address(self.organizer)

    def one(self, recipient: str) -> Mail:
        (mail,) = self.mails[recipient]
        return mail


@pytest.fixture(scope="module")
def alice(stack: Stack) -> DavUser:
    return account(stack, "Alice Martin")


def send(stack: Stack, sink: Sink, alice: DavUser, categories: str, href: str) -> Sent:
    u = uid()
    extra = [organizer_line(alice, "Alice Martin"), *(attendee(a, cn) for a, cn in PEOPLE)]
    body = ics.event(uid=u, summary=TITLE, categories=categories, extra="\n".join(extra))
    r = alice.put(href, body)
    assert r.status_code == 201, r.text
    sink.wait_count(u, len(PEOPLE) + 1)
    drained(stack)
    return Sent(alice, u, alice.get(href).text, by_recipient(sink.about(u)))


@pytest.fixture(scope="module")
def visio(stack: Stack, sink: Sink, alice: DavUser) -> Sent:
    return send(stack, sink, alice, "Travail,Visio", "comite.ics")


@pytest.fixture(scope="module")
def plain(stack: Stack, sink: Sink, alice: DavUser) -> Sent:
    return send(stack, sink, alice, "Travail", "dejeuner.ics")


def test_one_invitation_per_attendee_and_one_for_the_organizer(visio: Sent) -> None:
    expected = {a for a, _ in PEOPLE} | {visio.organizer_address}
    assert set(visio.mails) == expected
    assert {r: len(ms) for r, ms in visio.mails.items()} == dict.fromkeys(expected, 1)
    for recipient, (mail,) in visio.mails.items():
        assert mail.method == "REQUEST"
        assert mail.msg["To"].addresses[0].addr_spec.lower() == recipient


def test_mime_structure_outlook_gmail_thunderbird_understand(visio: Sent) -> None:
    for mail in (m for ms in visio.mails.values() for m in ms):
        msg = mail.msg
        assert msg.get_content_type() == "multipart/mixed"
        top = list(msg.iter_parts())
        assert top[0].get_content_type() == "multipart/alternative"
        alternative = list(top[0].iter_parts())
        assert [p.get_content_type() for p in alternative] == [
            "text/plain",
            "text/html",
            "text/calendar",
        ]
        inline = alternative[2]
        assert str(inline.get_param("method")).upper() == "REQUEST"
        assert str(inline.get_param("charset")).lower() == "utf-8"
        inline_cal = icalendar.Calendar.from_ical(inline.get_content())
        assert str(inline_cal["METHOD"]) == "REQUEST"

        attachments = top[1:]
        assert len(attachments) == 1
        (att,) = attachments
        assert att.is_attachment()
        assert att.get_filename() == "invite.ics"
        attached = att.get_content()
        attached = attached if isinstance(attached, bytes) else attached.encode()
        attached_cal = icalendar.Calendar.from_ical(attached)
        assert attached_cal.to_ical() == inline_cal.to_ical(), "the same calendar, twice"


def test_headers_system_sender_on_behalf_of_the_organizer(visio: Sent) -> None:
    for mail in (m for ms in visio.mails.values() for m in ms):
        msg = mail.msg
        (sender,) = msg["From"].addresses
        assert sender.addr_spec == MAIL_FROM
        assert sender.display_name == "Alice Martin"
        (reply_to,) = msg["Reply-To"].addresses
        assert reply_to.addr_spec.lower() == visio.organizer_address
        assert TITLE in str(msg["Subject"])
        assert msg["Message-ID"]


def test_itip_calendar_sent_by_and_rsvp(visio: Sent) -> None:
    for mail in (m for ms in visio.mails.values() for m in ms):
        (ev,) = mail.vevents
        assert str(ev["UID"]) == visio.uid
        assert "DTSTAMP" in ev and "SEQUENCE" in ev
        org = ev["ORGANIZER"]
        assert str(org).lower() == f"mailto:{visio.organizer_address}"
        assert str(org.params["SENT-BY"]).lower() == f"mailto:{MAIL_FROM}"
        people = ev["ATTENDEE"] if isinstance(ev["ATTENDEE"], list) else [ev["ATTENDEE"]]
        assert sorted(str(a).lower() for a in people) == sorted(f"mailto:{a}" for a, _ in PEOPLE)
        for a in people:
            assert str(a.params.get("RSVP")).upper() == "TRUE", a.params
        assert mail.cal is not None
        assert [str(tz["TZID"]) for tz in mail.cal.walk("VTIMEZONE")] == ["Europe/Paris"]


def test_bodies_say_what_when_who(visio: Sent) -> None:
    for mail in (m for ms in visio.mails.values() for m in ms):
        for body in (mail.text, mail.html):
            assert TITLE in body
            assert "jeudi 3 décembre 2026" in body
            assert "10:00" in body and "11:30" in body
            assert "(Europe/Paris)" in body
            assert "Alice Martin" in body
            for _, cn in PEOPLE:
                assert cn in body


def test_each_attendee_has_a_personal_join_link(visio: Sent) -> None:
    room_link = ics.join_link(visio.stored)
    links = {}
    for a, _ in PEOPLE:
        mail = visio.one(a)
        link = join_button(mail)
        assert link.startswith(visio.organizer.stack.web_url + "j/")
        assert link in mail.text
        assert calendar_link(mail) == link, "the attached calendar carries the same link"
        decoded = mail.text + mail.html + mail.calendar_part.get_content()  # type: ignore[union-attr]
        assert room_link not in decoded, "the room's own link must not reach attendees"
        links[a] = link
    assert len(set(links.values())) == len(PEOPLE), links
    assert room_link not in links.values()

    own = visio.one(visio.organizer_address)
    assert join_button(own) == room_link
    assert calendar_link(own) == room_link

    page = requests.get(room_link, timeout=10)
    assert page.status_code == 200 and TITLE in page.text


def test_personal_join_links_open_the_meeting_page(visio: Sent) -> None:
    for a, _ in PEOPLE:
        link = join_button(visio.one(a))
        page = requests.get(link, timeout=10)
        assert page.status_code == 200, f"{a}: GET {link} -> {page.status_code}"
        assert TITLE in page.text


def test_organizer_copy_shows_schedule_status_sent(visio: Sent) -> None:
    (ev,) = ics.vevents(visio.stored)
    people = {str(a).lower(): a for a in ev["ATTENDEE"]}
    for a, _ in PEOPLE:
        assert str(people[f"mailto:{a}"].params.get("SCHEDULE-STATUS")) == "1.1"


def test_plain_event_invites_without_join_link(plain: Sent) -> None:
    assert set(plain.mails) == {a for a, _ in PEOPLE} | {plain.organizer_address}
    for mail in (m for ms in plain.mails.values() for m in ms):
        assert len(plain.mails[mail.to]) == 1
        assert mail.method == "REQUEST"
        assert "Rejoindre" not in mail.text and "Rejoindre" not in mail.html
        assert "/j/" not in mail.text + mail.html
        (ev,) = mail.vevents
        assert "CONFERENCE" not in ev
        assert "/j/" not in mail.cal.to_ical().decode()  # type: ignore[union-attr]
        assert TITLE in str(mail.msg["Subject"])
        assert "(Europe/Paris)" in mail.text
