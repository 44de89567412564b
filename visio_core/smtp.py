"""Sending one message: SMTP when VISIO_SMTP_URL is set, else an .eml file in the mail
folder. Shared by the mail worker (invitations, in the front) and the recorder's
"recording ready" notice (in the media workers)."""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import aiosmtplib

from visio_core.settings import Settings


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    mode: str  # plain | starttls | tls


def parse_smtp_url(url: str) -> SmtpTarget:
    parts = urlsplit(url)
    modes = {"smtp": ("plain", 25), "smtp+starttls": ("starttls", 587), "smtps": ("tls", 465)}
    if parts.scheme not in modes or not parts.hostname:
        raise ValueError(
            f"VISIO_SMTP_URL must be smtp://HOST:PORT, smtp+starttls://… or smtps://… (got {url!r})"
        )
    mode, default_port = modes[parts.scheme]
    return SmtpTarget(parts.hostname, parts.port or default_port, mode)


async def close_client(client: aiosmtplib.SMTP | None) -> None:
    if client is not None and client.is_connected:
        try:
            await client.quit()
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


async def send_notice(settings: Settings, to: str, subject: str, body: str) -> None:
    """One plain-text message outside the outbox (the recorder's "recording ready").

    Same transport as invitations: SMTP when VISIO_SMTP_URL is set, else an
    .eml file in the mail folder.
    """
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = to
    msg["Subject"] = subject
    msg.set_content(body)
    if not settings.smtp_url:
        await asyncio.to_thread(write_eml, settings, f"notice-{time.time_ns()}-{to}", msg)
        return
    client = await smtp_client(settings)
    try:
        await client.send_message(msg, sender=settings.mail_from, recipients=[to])
    finally:
        await close_client(client)


def write_eml(settings: Settings, stem: str, msg: EmailMessage) -> None:
    """One message as an .eml file in the mail folder (no SMTP configured), atomically."""
    folder = settings.mail_dir
    folder.mkdir(parents=True, exist_ok=True)
    name = stem.replace("/", "_") + ".eml"
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(msg.as_bytes())
    os.replace(tmp, folder / name)


async def smtp_client(settings: Settings) -> aiosmtplib.SMTP:
    """A connected (and logged-in) SMTP client for VISIO_SMTP_URL, certificates verified."""
    target = parse_smtp_url(settings.smtp_url)
    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.port,
        use_tls=target.mode == "tls",
        start_tls=target.mode == "starttls",
        tls_context=ssl.create_default_context(cafile=settings.smtp_ca_file or None),
        timeout=30,
    )
    await client.connect()
    if settings.smtp_user:
        password = (
            Path(settings.smtp_password_file).read_text().strip()
            if settings.smtp_password_file
            else settings.smtp_password
        )
        await client.login(settings.smtp_user, password)
    return client
