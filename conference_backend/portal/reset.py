""" "Réinitialiser votre mot de passe".

Local accounts get a signed link by mail, valid one hour; it names the
current password hash (by a digest), so it works once: after the change it no
longer matches. Directory (LDAP) accounts are sent to the organisation's own
password page (VISIO_PASSWORD_URL): the portal never writes to the directory.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time

from aiohttp import web
from argon2 import PasswordHasher

from conference_backend.keys import DB
from conference_backend.mailer import send_notice
from conference_backend.portal.session import PORTAL, check_csrf, language, render
from conference_backend.portal.texts import TEXT
from visio_core import tokens
from visio_core.db import Database

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


def make_token(key: bytes, login: str, password_hash: str, now: float) -> str:
    expires = str(int(now) + LINK_SECONDS)
    stamp = hashlib.sha256(password_hash.encode()).hexdigest()[:16]
    return f"{login}.{expires}.{tokens.derive_token(key, 'reset', login, expires, stamp)}"


def check_token(key: bytes, db: Database, token: str, now: float) -> str | None:
    """The login the token resets, if it is ours, fresh and not used yet."""
    login, _, rest = token.partition(".")
    expires, _, signature = rest.partition(".")
    if not expires.isdigit() or int(expires) < now:
        return None
    current = _current_hash(db, login)
    if current is None:
        return None
    stamp = hashlib.sha256(current.encode()).hexdigest()[:16]
    expected = tokens.derive_token(key, "reset", login, expires, stamp)
    return login if hmac.compare_digest(signature, expected) else None


async def ask_page(request: web.Request) -> web.StreamResponse:
    settings = request.app[PORTAL].settings
    return await render(
        request, "portal/reset.html", {"step": "ask", "password_url": settings.password_url}
    )


async def ask_post(request: web.Request) -> web.StreamResponse:
    form = await check_csrf(request)
    portal = request.app[PORTAL]
    settings = portal.settings
    login = str(form.get("login") or "").strip().lower()[:64]
    account = portal.accounts().get(login)
    directory = account is not None and account.source != "local"
    if directory or (account is None and settings.ldap_uri):
        return await render(
            request, "portal/reset.html", {"step": "ldap", "password_url": settings.password_url}
        )
    lang = await language(request)
    current = _current_hash(request.app[DB], login) if account is not None else None
    if account is not None and current is not None:
        token = make_token(portal.key, login, current, time.time())
        t = TEXT[lang]
        body = t["reset_body"].format(
            name=account.name or login, link=f"{settings.public_url}/reset/{token}"
        )
        try:
            await send_notice(settings, account.email, t["reset_subject"], body)
            log.info("password reset link sent for %s", login)
        except Exception:  # the page must not tell whether the mail went out
            log.exception("password reset mail for %s could not be sent", login)
    # The same answer whether or not the account exists: nobody learns who has one.
    return await render(request, "portal/reset.html", {"step": "sent"})


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
    log.info("password of %s changed through a reset link", login)
    return await render(request, "portal/reset.html", {"step": "done"})


def setup(app: web.Application) -> None:
    app.router.add_get("/reset", ask_page)
    app.router.add_post("/reset", ask_post)
    app.router.add_get("/reset/{token}", choose_page)
    app.router.add_post("/reset/{token}", choose_post)
