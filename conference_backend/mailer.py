"""The mail worker: sends the outbox over SMTP, or writes .eml files when none is set.

Each message is marked sent in the database right after the SMTP server
accepts it, so a crash and restart resends nothing that was delivered (the
window is the instant between the server's 250 and the commit). Temporary
failures are retried with backoff; permanent ones (5xx) are marked failed,
logged, listed by `visio outbox`, and shown as SCHEDULE-STATUS 5.1 on the
organizer's copy at its next save.

Workers on several nodes may share one database: each claims its batch and holds
each message before sending it (visio_core/outbox.py), so every message still
goes out once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from email.message import EmailMessage

import aiohttp
import aiosmtplib
from aiohttp import web
from icalendar import Calendar

from conference_backend.portal.reset import reset_mail
from visio_core import conference, ical, imip, resets, tokens
from visio_core.db import Database
from visio_core.outbox import Outbox, Pending
from visio_core.settings import Settings
from visio_core.smtp import close_client, parse_smtp_url, smtp_client, write_eml

log = logging.getLogger("visio.mailer")
POLL_SECONDS = 1.0
BATCH = 200


class Mailer:
    def __init__(self, settings: Settings, db: Database, key: bytes) -> None:
        self.settings = settings
        self.db = db
        self.outbox = Outbox(db)
        self.key = key
        # One mail worker per node: its name outlives a restart (see visio_core/outbox.py).
        self.worker = f"{socket.gethostname()}:{settings.data_dir}"
        self._pruned = 0.0
        self.wake = asyncio.Event()
        self._cache: dict[
            tuple[int, str, str | None, int], tuple[Calendar, Calendar, ical.Template]
        ] = {}
        self.target = parse_smtp_url(settings.smtp_url) if settings.smtp_url else None

    # building -------------------------------------------------------------
    def _shared(self, p: Pending) -> tuple[Calendar, Calendar, ical.Template]:
        """What every recipient of the same message shares: parsed once per batch."""
        key = (p.change_id, p.method, p.recurrence_id, p.sequence)
        if key not in self._cache:
            stored = ical.parse(p.calendar)
            facts = imip.MessageFacts(
                method=p.method,
                recurrence_id=p.recurrence_id,
                sequence=p.sequence,
                recipient=p.organizer,
                organizer=p.organizer,
                organizer_name=p.organizer_name,
                mail_from=self.settings.mail_from,
                language=self.settings.language,
                join_url=imip.JOIN_PLACEHOLDER,
            )
            itip_cal = imip.itip_calendar(stored, facts)
            template = ical.Template(ical.serialize(itip_cal), imip.JOIN_PLACEHOLDER)
            self._cache[key] = (stored, itip_cal, template)
        return self._cache[key]

    def build(self, p: Pending) -> EmailMessage:
        s = self.settings
        stored, itip_cal, template = self._shared(p)
        join_url = None
        room_number = None
        identity = conference.room_identity(stored)
        if p.room_id:
            if p.recipient == p.organizer:
                join_url = s.join_prefix + tokens.room_token(self.key, p.room_id)
            else:
                join_url = s.join_prefix + tokens.attendee_token(self.key, p.room_id, p.recipient)
            room_number = identity[1] if identity else None
        rsvp: dict[str, str] = {}
        if p.method == "REQUEST" and p.recipient != p.organizer:
            token = tokens.rsvp_token(self.key, p.owner, p.uid, p.recipient)
            rsvp = {
                a: f"{s.public_url}/rsvp/{token}?answer={a}"
                for a in ("ACCEPTED", "TENTATIVE", "DECLINED")
            }
        facts = imip.MessageFacts(
            method=p.method,
            recurrence_id=p.recurrence_id,
            sequence=p.sequence,
            recipient=p.recipient,
            organizer=p.organizer,
            organizer_name=p.organizer_name,
            mail_from=s.mail_from,
            language=s.language,
            join_url=join_url,
            dialin_number=s.dialin_number or None,
            room_number=room_number,
            rsvp_urls=rsvp,
            is_update=p.is_update,
        )
        if p.method == "CANCEL":  # names the recipient, who may no longer be listed
            return imip.build_email(p.uid, imip.itip_calendar(stored, facts), facts)
        return imip.build_email(p.uid, itip_cal, facts, template.render(join_url or ""))

    # sending --------------------------------------------------------------
    def _write_eml(self, p: Pending, msg: EmailMessage) -> None:
        write_eml(self.settings, f"{p.id:08d}-{p.method.lower()}-{p.recipient}", msg)

    async def send_due(self) -> int:
        """Send what is due now; returns how many messages left."""
        due = await asyncio.to_thread(self.outbox.claim, self.worker, BATCH)
        self._cache.clear()
        if not due:
            return 0
        sent = 0
        client: aiosmtplib.SMTP | None = None
        try:
            for p in due:
                if not await asyncio.to_thread(self.outbox.hold, p.id, self.worker):
                    continue  # this batch took so long that another worker has it now
                try:
                    msg = await asyncio.to_thread(self.build, p)  # CPU: off the event loop
                except Exception as e:  # a message we cannot build will never send
                    log.exception("cannot build message %d to %s", p.id, p.recipient)
                    await asyncio.to_thread(self.outbox.mark_failed, p.id, p.attempts, str(e), True)
                    continue
                if self.target is None:
                    await asyncio.to_thread(self._write_eml, p, msg)
                    await asyncio.to_thread(self.outbox.mark_sent, [p.id])
                    sent += 1
                    continue
                try:
                    if client is None:
                        client = await smtp_client(self.settings)
                    await client.send_message(
                        msg, sender=self.settings.mail_from, recipients=[p.recipient]
                    )
                except aiosmtplib.SMTPRecipientsRefused as e:
                    await self._failed(p, str(e), permanent=_permanent(e))
                    continue
                except aiosmtplib.SMTPResponseException as e:
                    await self._failed(p, f"{e.code} {e.message}", permanent=e.code >= 500)
                    if e.code < 500:
                        await close_client(client)
                        client = None
                    continue
                except (OSError, aiosmtplib.SMTPException, TimeoutError) as e:
                    # The server is unreachable: everything else waits for the next round.
                    log.warning("SMTP server %s unreachable: %s", self.settings.smtp_url, e)
                    for q in due[due.index(p) :]:
                        await self._failed(q, f"SMTP unreachable: {e}", permanent=False, quiet=True)
                    await close_client(client)
                    client = None
                    break
                await asyncio.to_thread(self.outbox.mark_sent, [p.id])
                sent += 1
        finally:
            await close_client(client)
        if sent:
            log.info("%d invitation message(s) sent", sent)
        return sent

    async def _failed(self, p: Pending, error: str, permanent: bool, quiet: bool = False) -> None:
        gave_up = await asyncio.to_thread(
            self.outbox.mark_failed, p.id, p.attempts, error, permanent
        )
        if gave_up:
            await self._show_failure(p)
            log.error(
                "message %d (%s %s) to %s failed for good: %s",
                p.id,
                p.method,
                p.uid,
                p.recipient,
                error,
            )
        elif not quiet:
            log.warning("message %d to %s will be retried: %s", p.id, p.recipient, error)

    async def _show_failure(self, p: Pending) -> None:
        """Have the organizer's copy show SCHEDULE-STATUS 5.1 now, not at its next save."""
        if p.method == "REPLY":
            return
        body = json.dumps(
            {"owner": p.owner, "uid": p.uid, "address": p.recipient, "partstat": None}
        ).encode()
        try:
            async with (
                aiohttp.ClientSession() as http,
                http.post(
                    self.settings.caldav_url + ".visio/partstat",
                    data=body,
                    headers={"X-Visio-Signature": tokens.sign(self.key, body)},
                    timeout=aiohttp.ClientTimeout(total=20),
                ) as resp,
            ):
                if resp.status != 200:
                    log.warning("could not mark %s failed on %s's copy", p.recipient, p.owner)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.warning("could not reach the CalDAV server to show a failure: %s", e)

    # password reset links (conference_backend/portal/reset.py) ------------------
    async def send_resets(self) -> int:
        """Mail the queued password reset requests; returns how many mails went out."""
        now = time.time()
        if now - self._pruned > 3600:
            await asyncio.to_thread(resets.prune, self.db)
            self._pruned = now
        sent = 0
        for _ in range(50):  # a bounded round: the next comes within POLL_SECONDS
            req = await asyncio.to_thread(resets.claim, self.db)
            if req is None:
                break
            msg = await asyncio.to_thread(reset_mail, self.settings, self.key, self.db, req, now)
            if msg is None:  # unknown login, directory or disabled account: nothing to send
                await asyncio.to_thread(resets.done, self.db, req.id, "skipped")
                continue
            try:
                if self.target is None:
                    stem = f"reset-{req.id:08d}-{msg['To']}"
                    await asyncio.to_thread(write_eml, self.settings, stem, msg)
                else:
                    client = await smtp_client(self.settings)
                    try:
                        await client.send_message(msg, sender=self.settings.mail_from)
                    finally:
                        await close_client(client)
            except (OSError, aiosmtplib.SMTPException, TimeoutError) as e:
                permanent = isinstance(e, aiosmtplib.SMTPResponseException) and e.code >= 500
                if isinstance(e, aiosmtplib.SMTPRecipientsRefused):
                    permanent = _permanent(e)
                gave_up = await asyncio.to_thread(resets.failed, self.db, req, str(e), permanent)
                log.warning(
                    "password reset mail for %s %s: %s",
                    req.login,
                    "failed for good" if gave_up else "will be retried",
                    e,
                )
                continue
            await asyncio.to_thread(resets.done, self.db, req.id, "sent")
            log.info("password reset link sent for %s", req.login)
            sent += 1
        return sent

    async def run(self) -> None:
        released = await asyncio.to_thread(self.outbox.release, self.worker)
        if released:
            log.info("%d message(s) claimed before a restart are due again", released)
        while True:
            try:
                await self.send_due()
            except Exception:  # never let one bad round stop the worker
                log.exception("mail worker round failed")
            try:
                await self.send_resets()
            except Exception:
                log.exception("password reset round failed")
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), POLL_SECONDS)


def _permanent(e: aiosmtplib.SMTPRecipientsRefused) -> bool:
    return all(r.code >= 500 for r in e.recipients)


def mailer_context(settings: Settings):  # type: ignore[no-untyped-def]
    """A cleanup_ctx entry running the mail worker for the app's lifetime."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        db = Database(settings.database)
        mailer = Mailer(settings, db, tokens.load_or_create_key(settings.key_path))
        task = asyncio.create_task(mailer.run(), name="mail worker")
        start = time.monotonic()
        log.info("mail worker started (%s)", settings.smtp_url or f"writing to {settings.mail_dir}")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        db.close()
        log.debug("mail worker ran %.0f s", time.monotonic() - start)

    return ctx
