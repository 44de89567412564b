""" "Réinitialiser votre mot de passe".

Local accounts get a signed link by mail, valid one hour; it names the
current password hash (by a digest), so it works once: after the change it no
longer matches, and the change ends every portal session of the account.
Directory (LDAP) accounts are sent to the organisation's own password page
(VISIO_PASSWORD_URL): the portal never writes to the directory.

Asking for a link only writes a row (visio_core.resets), the same for every
login, and answers the same page: the mail worker sends the mail, so nobody
learns from the page or its timing whether an account exists, and a flood of
requests sends one mail per VISIO_RESET_MAIL_MINUTES.
"""

from __future__ import annotations

import hashlib
import logging
import time
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from aiohttp import web
from argon2 import PasswordHasher

from conference_backend.keys import DB
from conference_backend.portal.session import PORTAL, check_csrf, language, render
from conference_backend.portal.texts import TEXT
from visio_core import resets, tokens
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.i18n import LANGUAGES
from visio_core.settings import Settings

log = logging.getLogger("visio.portal")
LINK_SECONDS = 3600


def _current_hash(db: Database, login: str) -> str | None:
    with db.transaction() as conn:
        row = conn.execute(
            "SELECT password_hash FROM accounts WHERE login = ? AND source = 'local' "
            "AND disabled = 0",
            (login,),
        ).fetchone()
    return str(row["password_hash"]) if row and row["password_hash"] else None


def _stamp(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def make_token(key: bytes, login: str, password_hash: str, now: float) -> str:
    return tokens.reset_token(key, login, int(now) + LINK_SECONDS, _stamp(password_hash))


def check_token(key: bytes, db: Database, token: str, now: float) -> str | None:
    """The login the token resets, if it is ours, fresh and not used yet."""
    found = tokens.read_reset_token(token)
    if found is None:
        return None  # also every link of the old format (login.expires.signature)
    login, expires, signature = found
    if expires < now:
        return None
    current = _current_hash(db, login)
    if current is None:
        return None
    genuine = tokens.check_reset_token(key, login, expires, _stamp(current), signature)
    return login if genuine else None


def reset_mail(
    settings: Settings, key: bytes, db: Database, request: resets.Request, now: float
) -> EmailMessage | None:
    """The mail a queued request becomes: for an enabled local account with an address only."""
    account = Accounts(db).get(request.login)
    current = _current_hash(db, request.login)
    if account is None or current is None or not account.email:
        return None
    t = TEXT[request.language if request.language in LANGUAGES else settings.language]
    token = make_token(key, account.login, current, now)
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = account.email
    msg["Subject"] = t["reset_subject"]
    msg["Date"] = formatdate(now, localtime=False)
    msg["Message-ID"] = make_msgid(domain=settings.mail_from.rpartition("@")[2] or None)
    msg.set_content(
        t["reset_body"].format(
            name=account.name or account.login, link=f"{settings.public_url}/reset/{token}"
        )
    )
    return msg


def _directory(settings: Settings) -> bool:
    """Whether the pages mention the directory's own password page (LDAP mode)."""
    return bool(settings.ldap_uri or settings.password_url)


async def ask_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[PORTAL].settings
    return await render(
        request, "portal/reset.html", {"step": "ask", "password_url": settings.password_url}
    )


async def ask_post(request: web.Request) -> web.StreamResponse:
    form = await check_csrf(request)
    settings = request.app[PORTAL].settings
    login = str(form.get("login") or "").strip().lower()[:64]
    lang = await language(request)
    # The same work for every login, known or not: one row, no lookup, no SMTP.
    queued = resets.ask(request.app[DB], login, lang, settings.reset_mail_minutes * 60, time.time())
    # Masked: people do type their password into the login field.
    shown = login[:2] + "*" * max(len(login) - 2, 0)
    log.info("password reset %s for %r", "asked" if queued else "asked again (ignored)", shown)
    context = {
        "step": "sent",
        "directory": _directory(settings),
        "password_url": settings.password_url,
    }
    return await render(request, "portal/reset.html", context)


async def choose_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    ok = check_token(request.app[PORTAL].key, request.app[DB], token, time.time())
    step = "choose" if ok else "bad"
    return await render(request, "portal/reset.html", {"step": step, "token": token})


async def choose_post(request: web.Request) -> web.StreamResponse:
    form = await check_csrf(request)
    lang = await language(request)
    t = TEXT[lang]
    token = request.match_info["token"]
    db = request.app[DB]
    login = check_token(request.app[PORTAL].key, db, token, time.time())
    if login is None:
        return await render(request, "portal/reset.html", {"step": "bad"}, status=400)
    password = str(form.get("password") or "")
    error = ""
    if len(password) < 8:
        error = t["reset_short"]
    elif password != str(form.get("confirm") or ""):
        error = t["reset_mismatch"]
    if error:
        context = {"step": "choose", "token": token, "error": error}
        return await render(request, "portal/reset.html", context, status=400)
    hashed = PasswordHasher().hash(password)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE accounts SET password_hash = ? WHERE login = ? AND source = 'local'",
            (hashed, login),
        )
    # The update ends every portal session of the account (trigger, visio_core/schema_*.py).
    log.info("password of %s changed through a reset link", login)
    return await render(request, "portal/reset.html", {"step": "done"})


def setup(app: web.Application) -> None:
    app.router.add_get("/reset", ask_page)
    app.router.add_post("/reset", ask_post)
    app.router.add_get("/reset/{token}", choose_page)
    app.router.add_post("/reset/{token}", choose_post)
