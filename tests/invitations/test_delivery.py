"""Nothing lost, nothing doubled, nothing injected: the mail worker against a real SMTP server."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import DavUser
from tests.invitations.conftest import account, address, attendee, uid
from tests.invitations.mail import (
    MAIL_FROM,
    Mail,
    Sink,
    by_recipient,
    counts,
    drained,
    outbox_rows,
)
from tests.support import ics
from tests.support.stack import Stack, free_port, wait_for

FANOUT = 200


@pytest.fixture(scope="module")
def alice(stack: Stack) -> DavUser:
    return account(stack, "Alice Martin")


def put(user: DavUser, href: str, body: str) -> None:
    r = user.put(href, body)
    assert r.status_code in (201, 204), r.text


def crowd(n: int, tag: str) -> list[str]:
    return [f"{tag}{i:03d}@example.net" for i in range(n)]


def kill9(stack: Stack) -> None:
    """kill -9 the whole `visio serve` process group (web, mail worker, CalDAV child)."""
    assert stack.proc is not None
    os.killpg(stack.proc.pid, signal.SIGKILL)
    stack.proc.wait(timeout=10)
    stack.stop()  # the process is gone: this only forgets it and closes its log


# SMTP down at PUT time, then up ------------------------------------------------------


def test_smtp_down_then_up_each_message_arrives_once(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet
    sink = Sink(port=port)
    stack = Stack(tmp_path / "stack", extra_env=sink.env).start()
    try:
        org = account(stack, "Alice Martin")
        people = ["dora@example.com", "emile@example.net", "farid@example.com"]
        u = uid()
        put(org, "down.ics", ics.event(uid=u, extra="\n".join(attendee(a) for a in people)))
        expected = {*people, address(org)}

        # The worker tried, failed and keeps every message for a retry.
        wait_for(
            lambda: (
                len(rows := outbox_rows(stack, u)) == len(expected)
                and all(state == "pending" and attempts >= 1 for _, _, state, attempts in rows)
            ),
            timeout=20,
            what="a failed first attempt",
        )
        assert "unreachable" in stack.log_text()

        sink.start()
        sink.wait(u, lambda ms: {m.to for m in ms} >= expected, timeout=40, what="retries")
        drained(stack, timeout=40)
        assert counts(sink.about(u)) == Counter(dict.fromkeys(expected, 1))
        assert {state for _, _, state, _ in outbox_rows(stack, u)} == {"sent"}
        assert all(m.method == "REQUEST" for m in sink.about(u))
    finally:
        stack.stop()
        sink.stop()


# kill -9 during a fan-out of 200 --------------------------------------------------------


def fan_out(stack: Stack, sink: Sink, org: DavUser, n: int, tag: str) -> tuple[str, set[str]]:
    people = crowd(n, tag)
    u = uid()
    put(org, f"{u}.ics", ics.event(uid=u, extra="\n".join(attendee(a) for a in people)))
    return u, {*people, address(org)}


def restart_and_collect(stack: Stack, sink: Sink, u: str, expected: set[str]) -> list[Mail]:
    stack.start()
    sink.wait(u, lambda ms: {m.to for m in ms} >= expected, timeout=60, what="the whole fan-out")
    drained(stack, timeout=60)
    return sink.about(u)


def test_kill9_between_two_messages_of_a_fanout_then_restart_sends_each_once(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    # The SMTP server stalls the 6th message at RCPT: five invitations are out, the
    # sixth is not delivered, and the worker is blocked mid-fan-out when it dies.
    sink.hold_at("RCPT", 6)
    u, expected = fan_out(stack, sink, alice, FANOUT, "kill")
    assert len(expected) == FANOUT + 1
    assert sink.held.wait(30), "the fan-out did not start"
    assert len(sink.about(u)) == 5
    kill9(stack)
    sink.unhold()

    mails = restart_and_collect(stack, sink, u, expected)
    assert counts(mails) == Counter(dict.fromkeys(expected, 1))
    assert {(m.method, m.sequence) for m in mails} == {("REQUEST", 0)}
    assert {state for _, _, state, _ in outbox_rows(stack, u)} == {"sent"}


@dataclass
class Crash:
    uid: str
    expected: set[str]
    mails: list[Mail]
    victim: str  # the recipient whose message was accepted when the worker died


@pytest.fixture(scope="module")
def crash_after_data(stack: Stack, sink: Sink, alice: DavUser) -> Crash:
    # The SMTP server has taken the 6th message (it is in the mailbox) but has not yet
    # answered 250 when the worker dies: the worker could not record it as sent.
    sink.hold_at("DATA", 6)
    u, expected = fan_out(stack, sink, alice, 20, "crash")
    assert sink.held.wait(30), "the fan-out did not start"
    victim = sink.about(u)[-1].to
    kill9(stack)
    sink.unhold()
    return Crash(u, expected, restart_and_collect(stack, sink, u, expected), victim)


def test_kill9_after_data_resend_carries_the_same_message_id(crash_after_data: Crash) -> None:
    """What the product does guarantee: nothing lost, and a resend is recognisable."""
    got = by_recipient(crash_after_data.mails)
    assert set(got) == crash_after_data.expected
    for recipient, mails in got.items():
        assert len({m.msg["Message-ID"] for m in mails}) == 1, recipient
        assert recipient == crash_after_data.victim or len(mails) == 1


@pytest.mark.xfail(
    strict=True,
    reason=(
        "BUG (exactly-once across kill -9 not guaranteed): the mailer marks a row sent only "
        "after the SMTP server's 250 (conference_backend/mailer.py send_due -> mark_sent); a "
        "crash after the server accepted DATA and before that commit leaves the row pending, "
        "so the restarted worker sends it again (same Message-ID, second copy in the mailbox)"
    ),
)
def test_kill9_after_data_then_restart_each_recipient_gets_one(crash_after_data: Crash) -> None:
    assert counts(crash_after_data.mails) == Counter(dict.fromkeys(crash_after_data.expected, 1))


# hostile data -----------------------------------------------------------------------

HEADERS = {
    "subject",
    "from",
    "to",
    "reply-to",
    "date",
    "message-id",
    "auto-submitted",
    "mime-version",
    "content-type",
}


def raw_header_names(raw: bytes) -> list[str]:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("ascii", "replace")
    return [
        line.split(":", 1)[0].strip().lower()
        for line in head.split("\n")
        if line and not line[0].isspace()
    ]


def test_header_injection_through_summary_and_cn_creates_no_header(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    u = uid()
    # iCalendar cannot carry a raw CR/LF, but its escapes decode to one: "\n" in a text
    # value, RFC 6868 "^n" in a parameter; a literal "\n" in a parameter stays as typed.
    summary = "Point budget\\r\\nBcc: victim@example.org\\nX-Injected: 0"
    people = [
        attendee("eve@example.com", "Eve\\nX-Injected: 1"),
        'ATTENDEE;CN="Mallory^nX-Injected: 2^nBcc: victim@example.org";RSVP=TRUE'
        ":mailto:mallory@example.com",
        attendee("gina@example.com", "Gina"),
    ]
    put(alice, "inject.ics", ics.event(uid=u, summary=summary, extra="\n".join(people)))
    expected = {"eve@example.com", "mallory@example.com", "gina@example.com", address(alice)}
    sink.wait(u, lambda ms: {m.to for m in ms} >= expected, what="invitations")
    drained(stack)

    mails = sink.about(u)
    assert counts(mails) == Counter(dict.fromkeys(expected, 1))
    for mail in mails:
        keys = {k.lower() for k in mail.msg}
        assert keys == HEADERS, keys
        names = raw_header_names(mail.raw)
        assert "bcc" not in names and "x-injected" not in names, names
        assert sorted(names) == sorted(HEADERS)
        for name in ("Subject", "From", "To", "Reply-To"):
            assert not any(c in str(mail.msg[name]) for c in "\r\n\0"), (name, mail.msg[name])
        assert "Point budget" in str(mail.msg["Subject"])
    everyone = [r.lower() for m in sink.all() for r in m.rcpt]
    assert "victim@example.org" not in everyone
    assert not any("victim@example.org" in str(m.msg.get("To", "")) for m in sink.all())


def test_malformed_attendee_address_gets_3_7_and_the_others_still_get_mail(
    stack: Stack, sink: Sink, alice: DavUser
) -> None:
    u = uid()
    people = [
        attendee("hugo@example.com", "Hugo"),
        "ATTENDEE:mailto:not an address",
        attendee("iris@example.net", "Iris"),
    ]
    put(alice, "malformed.ics", ics.event(uid=u, extra="\n".join(people)))
    expected = {"hugo@example.com", "iris@example.net", address(alice)}
    sink.wait(u, lambda ms: {m.to for m in ms} >= expected, what="invitations")
    drained(stack)
    assert counts(sink.about(u)) == Counter(dict.fromkeys(expected, 1))

    (ev,) = ics.vevents(alice.get("malformed.ics").text)
    status = {str(a): str(a.params.get("SCHEDULE-STATUS")) for a in ev["ATTENDEE"]}
    assert status == {
        "mailto:hugo@example.com": "1.1",
        "mailto:not an address": "3.7",
        "mailto:iris@example.net": "1.1",
    }
    assert all(m.msg["From"].addresses[0].addr_spec == MAIL_FROM for m in sink.about(u))


@pytest.fixture(autouse=True)
def _no_stalled_smtp(sink: Sink) -> Iterator[None]:
    yield
    sink.unhold()
