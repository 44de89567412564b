"""Portal sessions: an encrypted cookie (aiohttp-session + Fernet), CSRF, page rendering.

The cookie is encrypted and authenticated with a key derived from the server
key; a restart keeps people signed in. Being signed in also needs the cookie's
session id to be known and not ended server-side (signins.py), so signing out,
a password change or a disabled account ends it even if the cookie is replayed.
Every form carries a per-session CSRF token checked on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import aiohttp_jinja2
import aiohttp_session
from aiohttp import web
from aiohttp_session.cookie_storage import EncryptedCookieStorage

from conference_backend.portal import signins
from conference_backend.portal.caldav_client import CalDav
from conference_backend.portal.occurrences import Cache
from conference_backend.portal.texts import TEXT
from visio_core.accounts import Account, Accounts
from visio_core.agenda import Agenda
from visio_core.i18n import DEFAULT_LANGUAGE, LANGUAGES
from visio_core.settings import Settings

SESSION_SECONDS = 10 * 3600  # a working day; signing in again after that is expected
DEFAULT_ZONE = "Europe/Paris"


@dataclass
class Portal:
    settings: Settings
    key: bytes
    accounts: Callable[[], Accounts]  # the app's Accounts, opened in cleanup_ctx
    agenda: Callable[[], Agenda]  # the index of everyone's occurrences, on the app's database
    caldav: CalDav | None = None
    cache: Cache = field(default_factory=Cache)


PORTAL = web.AppKey("portal", Portal)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def install(app: web.Application, key: bytes, secure: bool) -> None:
    secret = hmac.new(key, b"portal-session-cookie", hashlib.sha256).digest()
    storage = EncryptedCookieStorage(
        secret,  # raw bytes: the storage base64-encodes them into a Fernet key
        cookie_name="visio_portal",
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="Lax",
        secure=secure,
    )
    aiohttp_session.setup(app, storage)


async def session(request: web.Request) -> aiohttp_session.Session:
    return await aiohttp_session.get_session(request)


async def language(request: web.Request) -> str:
    s = await session(request)
    chosen = request.query.get("lang", "")[:2].lower()
    if chosen in LANGUAGES:
        s["lang"] = chosen  # a choice made once holds for the whole visit
        return chosen
    stored = s.get("lang")
    return stored if stored in LANGUAGES else DEFAULT_LANGUAGE


def zone(s: aiohttp_session.Session) -> ZoneInfo:
    try:
        return ZoneInfo(str(s.get("tz") or DEFAULT_ZONE))
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo(DEFAULT_ZONE)


def csrf_token(s: aiohttp_session.Session) -> str:
    token = s.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(24)
        s["csrf"] = token
    return token


async def check_csrf(request: web.Request) -> dict[str, Any]:
    """The posted form if its CSRF token matches the session's; 403 otherwise."""
    form = await request.post()
    s = await session(request)
    expected = s.get("csrf")
    given = str(form.get("csrf", ""))
    if not isinstance(expected, str) or not hmac.compare_digest(given, expected):
        lang = await language(request)
        raise web.HTTPForbidden(text=TEXT[lang]["expired_form"])
    data: dict[str, Any] = {k: form.get(k) for k in form}
    data["__days"] = [str(v) for v in form.getall("day", [])]
    return data


ME = "portal_me"  # the signed-in account, looked up once per request


def user(request: web.Request, s: aiohttp_session.Session) -> Account | None:
    if ME in request:
        cached: Account | None = request[ME]
        return cached
    request[ME] = found = _lookup(request, s)
    return found


def _lookup(request: web.Request, s: aiohttp_session.Session) -> Account | None:
    login, session_id = s.get("login"), s.get("sid")
    if not isinstance(login, str):
        return None
    accounts = request.app[PORTAL].accounts()
    known = isinstance(session_id, str) and signins.alive(
        accounts.db, session_id, login, time.time(), SESSION_SECONDS
    )
    account = accounts.get(login) if known else None
    if account is None or account.disabled:
        # Ended (signed out, password changed, account disabled) or expired: forget it.
        s.pop("login", None)
        s.pop("sid", None)
        return None
    return account


def sign_in(request: web.Request, s: aiohttp_session.Session, login: str) -> None:
    """Record a new server-side session for `login` in the (fresh) cookie session `s`."""
    db = request.app[PORTAL].accounts().db
    s["login"] = login
    s["sid"] = signins.start(db, login, time.time(), SESSION_SECONDS)


def sign_out(request: web.Request, s: aiohttp_session.Session) -> None:
    """End this session server-side too: the same cookie, replayed, opens nothing."""
    session_id = s.get("sid")
    if isinstance(session_id, str):
        signins.end(request.app[PORTAL].accounts().db, session_id)
    s.invalidate()


def signed_in(handler: Callable[[web.Request, Account], Awaitable[web.StreamResponse]]) -> Handler:
    """Pages for signed-in people only; the others go to the sign-in page."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        s = await session(request)
        account = user(request, s)
        if account is None:
            raise web.HTTPSeeOther("/login")
        return await handler(request, account)

    return wrapped


async def render(
    request: web.Request, template: str, context: dict[str, Any], status: int = 200
) -> web.Response:
    s = await session(request)
    lang = await language(request)
    settings = request.app[PORTAL].settings
    account = user(request, s)
    base = {
        "lang": lang,
        "other_lang": "en" if lang == "fr" else "fr",
        "t": TEXT[lang],
        "csrf": csrf_token(s),
        "me": account,
        "support_phone": settings.support_phone,
        "help_url": settings.help_url,
        "path": request.path,
    }
    response = aiohttp_jinja2.render_template(template, request, {**base, **context}, status=status)
    response.headers["Cache-Control"] = "no-store"  # CSP etc.: conference_backend/headers.py
    return response
