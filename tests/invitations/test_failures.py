"""A recipient the SMTP server refuses for good: visible on the organizer's copy and in
`visio outbox`, while everyone else still gets their invitation."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.e2e.conftest import PASSWORD, DavUser
from tests.invitations.conftest import attendee, organizer_line, uid
from tests.invitations.mail import Sink
from tests.support import ics
from tests.support.stack import Stack, wait_for

REFUSED = "nobody@refused.example"


class Refusing(Sink):
    """Answers 550 to one address, as a real server does for an unknown mailbox."""

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.lower() == REFUSED:
            return "550 5.1.1 No such user"
        return await super().handle_RCPT(server, session, envelope, address, options)


@pytest.fixture(scope="module")
def sink() -> Iterator[Sink]:
    s = Refusing().start()
    try:
        yield s
    finally:
        s.stop()


def test_refused_recipient_shows_5_1_and_others_get_mail(stack: Stack, sink: Sink) -> None:
    stack.add_user("orga", PASSWORD, email="orga@example.org", name="Orga")
    user = DavUser(stack, "orga", PASSWORD, "")
    user.calendar = user.make_calendar("calendar")
    u = uid()
    extra = "\n".join([organizer_line(user, "Orga"), attendee(REFUSED), attendee("ok@ext.example")])
    assert user.put("f.ics", ics.event(uid=u, extra=extra)).status_code == 201

    sink.wait_count(u, 2)  # the other attendee and the organizer's own copy

    def status_of_refused() -> str | None:
        ev = ics.vevents(user.get("f.ics").text)[0]
        for a in ev.get("ATTENDEE"):
            if REFUSED in str(a).lower():
                return str(a.params.get("SCHEDULE-STATUS"))
        return None

    wait_for(lambda: status_of_refused() == "5.1", timeout=30, what="SCHEDULE-STATUS 5.1")
    listing = stack.visio("outbox", check=False)
    assert listing.returncode == 1, "a failed message makes `visio outbox` exit 1"
    line = next(line for line in listing.stdout.splitlines() if REFUSED in line)
    assert "failed" in line and "550" in line
    assert all(REFUSED not in m.rcpt for m in sink.all())
