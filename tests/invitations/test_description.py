"""The organizer's description (the agenda) in the invitation's text and HTML parts.

An organizer saves an event whose DESCRIPTION holds an agenda, a link and an
attempt at HTML injection; the attendee's mailbox (a real SMTP server) shows it
in both parts, as text, without the product's block; an update shows the new one.
"""

from __future__ import annotations

from html.parser import HTMLParser

import icalendar
import pytest

from tests.e2e.conftest import DavUser
from tests.invitations.conftest import account, address, attendee, uid
from tests.invitations.mail import Mail, Sink, by_recipient, drained
from tests.invitations.test_structure import html_links
from tests.support import ics
from tests.support.stack import Stack
from visio_core.conference import BLOCK_START

ANNE = ("anne@example.com", "Anne Leroy")
INJECTION = "<script>alert(1)</script><b>x</b> <a href='https://evil.example.net/'>clic</a>"
LINK = "https://docs.example.org/agenda?a=1&b=2"
AGENDA = f"Point d'étape, ordre du jour joint.\n1. Budget\n2. {INJECTION}\n{LINK}"
NEW_AGENDA = "Ordre du jour modifié :\n1. Calendrier\n<i>fin</i>"


class _Page(HTMLParser):
    """What a mail client renders: the elements, and the text of the description."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.description = ""
        self._depth = 0  # > 0 inside the description paragraph

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if self._depth:
            self._depth += 1
            if tag == "br":
                self.description += "\n"
                self._depth -= 1  # a void element: no end tag follows
        elif ("data-visio", "description") in attrs:
            self._depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self._depth:
            self._depth -= 1

    def handle_data(self, data: str) -> None:
        if self._depth:
            # Line breaks in the source are not shown: only <br> breaks a line.
            self.description += data.replace("\r", "").replace("\n", "")


def rendered(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def ical_text(value: str) -> str:
    """A TEXT value as iCalendar writes it (RFC 5545 §3.3.11)."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\n", "\\n")
    )


def assert_shows(mail: Mail, stack: Stack, description: str, label: str) -> None:
    text = mail.text.replace("\r\n", "\n")  # as received over SMTP
    assert f"{label} :\n{description}\n" in text, text
    assert BLOCK_START not in text
    page = rendered(mail.html)
    assert page.description == description, mail.html
    assert BLOCK_START not in mail.html
    # Nothing written in the event became markup or a link in the HTML part.
    assert not {"script", "b", "i"} & set(page.tags), page.tags
    assert all(href.startswith(stack.web_url) for href, _ in html_links(mail.html))


@pytest.fixture(scope="module")
def alice(stack: Stack) -> DavUser:
    return account(stack, "Alice Martin")


def test_request_and_update_show_the_organizers_description(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    u = uid()
    href = f"{u}.ics"
    body = ics.event(
        uid=u,
        extra="\n".join([attendee(*ANNE), f"DESCRIPTION:{ical_text(AGENDA)}"]),
    )
    assert alice.put(href, body).status_code == 201
    sink.wait(u, lambda ms: ANNE[0] in {m.to for m in ms}, what="the invitation")
    drained(stack)
    (request,) = by_recipient(sink.about(u))[ANNE[0]]
    assert request.method == "REQUEST"
    assert_shows(request, stack, AGENDA, "Ordre du jour / Description")
    # The calendar part keeps the whole description, block included (clients show it).
    (ev,) = request.vevents
    assert str(ev["DESCRIPTION"]).startswith(AGENDA) and BLOCK_START in str(ev["DESCRIPTION"])

    # The organizer's client rewrites the text above the block, as a person would.
    before = len(sink.about(u))
    cal = icalendar.Calendar.from_ical(alice.get(href).text)
    (stored,) = cal.walk("VEVENT")
    block = str(stored["DESCRIPTION"])[str(stored["DESCRIPTION"]).index(BLOCK_START) :]
    stored.pop("DESCRIPTION")
    stored.add("DESCRIPTION", f"{NEW_AGENDA}\n\n{block}")
    assert alice.put(href, cal.to_ical().decode()).status_code == 204
    sink.wait(u, lambda ms: ANNE[0] in {m.to for m in ms[before:]}, what="the update")
    drained(stack)
    (update,) = by_recipient(sink.about(u)[before:])[ANNE[0]]
    assert update.method == "REQUEST" and update.sequence > request.sequence
    assert "Mise à jour" in str(update.msg["Subject"])
    assert_shows(update, stack, NEW_AGENDA, "Ordre du jour / Description")
    assert "Budget" not in update.text + update.html

    # The organizer's own copy of the invitation shows it too.
    (own,) = by_recipient(sink.about(u)[before:])[address(alice)]
    assert_shows(own, stack, NEW_AGENDA, "Ordre du jour / Description")
