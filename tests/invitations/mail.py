"""A real SMTP server (aiosmtpd) in the test process, and helpers to read what it got.

Every message is parsed back with the stdlib email package (policy.default) and its
text/calendar part with icalendar, as a mail client would.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email.message import EmailMessage
from functools import cached_property

import icalendar
from aiosmtpd.controller import Controller

from tests.support.stack import Stack, free_port, wait_for

MAIL_FROM = "visio@example.org"


@dataclass
class Mail:
    """One message as the SMTP server received it."""

    rcpt: tuple[str, ...]  # envelope recipients
    raw: bytes

    # Parsed on first use, in the test's thread: the SMTP server itself stays quick.
    @cached_property
    def msg(self) -> EmailMessage:
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    @cached_property
    def calendar_part(self) -> EmailMessage | None:
        return _calendar_part(self.msg)

    @cached_property
    def cal(self) -> icalendar.Calendar | None:
        part = self.calendar_part
        return icalendar.Calendar.from_ical(part.get_content()) if part is not None else None

    @property
    def to(self) -> str:
        (rcpt,) = self.rcpt
        return rcpt.lower()

    @property
    def method(self) -> str:
        assert self.cal is not None
        return str(self.cal["METHOD"])

    @property
    def vevents(self) -> list[icalendar.Event]:
        assert self.cal is not None
        return list(self.cal.walk("VEVENT"))

    @property
    def uid(self) -> str:
        return str(self.vevents[0]["UID"])

    @property
    def sequence(self) -> int:
        return int(self.vevents[0].get("SEQUENCE", 0))

    @property
    def recurrence_ids(self) -> list[object]:
        return [ev["RECURRENCE-ID"].dt for ev in self.vevents if "RECURRENCE-ID" in ev]

    def part(self, content_type: str) -> EmailMessage:
        for p in self.msg.walk():
            if p.get_content_type() == content_type and not p.is_attachment():
                return p  # type: ignore[return-value]
        raise AssertionError(f"no {content_type} part in:\n{self.raw.decode(errors='replace')}")

    @property
    def text(self) -> str:
        return str(self.part("text/plain").get_content())

    @property
    def html(self) -> str:
        return str(self.part("text/html").get_content())


def _calendar_part(msg: EmailMessage) -> EmailMessage | None:
    for p in msg.walk():
        if p.get_content_type() == "text/calendar" and not p.is_attachment():
            return p  # type: ignore[return-value]
    return None


@dataclass
class Sink:
    """aiosmtpd handler collecting (envelope recipients, raw bytes), thread-safe.

    `hold_at` makes the server stall one SMTP command of a later message until
    `release` is set: its "RCPT" (the message is not delivered yet), or the end of its
    "DATA" (delivered and recorded, the 250 reply not sent yet); `held` is set then.
    """

    mails: list[Mail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = field(default_factory=free_port)
    hold: tuple[str, int] | None = None
    held: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)
    controller: Controller | None = None
    _seen: int = 0

    # aiosmtpd handler hooks ------------------------------------------------
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.hold is not None and self.hold[0] == "RCPT" and self._seen + 1 == self.hold[1]:
            await self._stall()
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        with self.lock:
            self.mails.append(Mail(tuple(envelope.rcpt_tos), bytes(raw)))
            self._seen += 1
            seen = self._seen
        if self.hold is not None and self.hold[0] == "DATA" and seen == self.hold[1]:
            await self._stall()
        return "250 Message accepted for delivery"

    def hold_at(self, command: str, nth: int) -> None:
        """Stall `command` ("RCPT" or "DATA") of the nth message from now on."""
        with self.lock:
            self.held.clear()
            self.release.clear()
            self.hold = (command, self._seen + nth)

    def unhold(self) -> None:
        with self.lock:
            self.hold = None
        self.release.set()

    async def _stall(self) -> None:
        self.held.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)

    # control -----------------------------------------------------------------
    def start(self) -> Sink:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        self.unhold()
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def env(self) -> dict[str, str]:
        return {"VISIO_SMTP_URL": f"smtp://127.0.0.1:{self.port}", "VISIO_MAIL_FROM": MAIL_FROM}

    def all(self) -> list[Mail]:
        with self.lock:
            return list(self.mails)

    def about(self, uid: str) -> list[Mail]:
        return [m for m in self.all() if m.cal is not None and m.uid == uid]

    def wait(
        self,
        uid: str,
        predicate: Callable[[list[Mail]], bool],
        timeout: float = 60.0,
        what: str = "mail",
    ) -> list[Mail]:
        try:
            wait_for(lambda: predicate(self.about(uid)), timeout=timeout, what=what)
        except TimeoutError as e:
            got = [(m.to, m.method, m.sequence, m.recurrence_ids) for m in self.about(uid)]
            raise AssertionError(f"{e}; got for {uid}: {got}") from None
        return self.about(uid)

    def wait_count(self, uid: str, count: int, timeout: float = 60.0) -> list[Mail]:
        return self.wait(uid, lambda ms: len(ms) >= count, timeout, f"{count} messages")


def pending(stack: Stack) -> int:
    with stack.db() as db, db.reading() as conn:
        (n,) = conn.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()
    return int(n)


def outbox_rows(stack: Stack, uid: str) -> list[tuple[str, str, str, int]]:
    """(method, recipient, state, attempts) of every outbox row of `uid`."""
    with stack.db() as db, db.reading() as conn:
        rows = conn.execute(
            "SELECT method, recipient, state, attempts FROM outbox WHERE uid = ? ORDER BY id",
            (uid,),
        ).fetchall()
    return [(str(a), str(b), str(c), int(d)) for a, b, c, d in rows]


def drained(stack: Stack, timeout: float = 30.0) -> None:
    """Wait until the mail worker has nothing pending (so what was due has been sent)."""
    wait_for(lambda: pending(stack) == 0, timeout=timeout, what="an empty outbox")


def new_mail(sink: Sink, stack: Stack, uid: str, before: int) -> list[Mail]:
    """Messages about `uid` that arrived after the first `before` ones, once all are sent."""
    drained(stack)
    return sink.about(uid)[before:]


def by_recipient(mails: Iterable[Mail]) -> dict[str, list[Mail]]:
    found: dict[str, list[Mail]] = {}
    for m in mails:
        found.setdefault(m.to, []).append(m)
    return found


def counts(mails: Iterable[Mail]) -> Counter[str]:
    return Counter(m.to for m in mails)
