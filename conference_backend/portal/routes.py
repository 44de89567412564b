"""Sign in and out, home, "Planifier une réunion", "Réunion instantanée", suggestions."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import quote, unquote, urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from conference_backend import keys
from conference_backend.passwords import check_password
from conference_backend.portal import busy, meetings, occurrences
from conference_backend.portal.caldav_client import CalDav, CalDavError
from conference_backend.portal.session import (
    PORTAL,
    check_csrf,
    language,
    render,
    session,
    sign_in,
    sign_out,
    signed_in,
    user,
    zone,
)
from conference_backend.portal.texts import TEXT
from ldap_sync import store
from visio_core import ical, tokens
from visio_core.accounts import Account
from visio_core.addresses import client_address
from visio_core.identity import Person, resume_token
from visio_core.tokens import new_participant_id

log = logging.getLogger("visio.portal")


def caldav(request: web.Request) -> CalDav:
    client = request.app[PORTAL].caldav
    assert client is not None  # set by the portal's cleanup_ctx before serving
    return client


async def shown_between(
    request: web.Request, me: Account, start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[occurrences.Occurrence]:
    """The user's occurrences in [start, end), for the lists and the calendar."""
    portal = request.app[PORTAL]
    return await occurrences.between(
        caldav(request), portal.agenda(), me, start, end, tz, portal.cache
    )


def may_book(request: web.Request, me: Account) -> bool:
    """Directory accounts outside the booking group may not create meetings."""
    return store.may_book(request.app[PORTAL].accounts().db, me.login)


async def not_allowed(request: web.Request) -> web.StreamResponse:
    return await render(request, "portal/home.html", {"refused": True, "today": []}, status=403)


async def flash(request: web.Request, key: str) -> None:
    (await session(request))["flash"] = key


async def take_flash(request: web.Request) -> str:
    s = await session(request)
    # Only when there is one: popping marks the session changed (a new cookie).
    return str(s.pop("flash")) if "flash" in s else ""


# signing in ----------------------------------------------------------------------
SIGN_IN_REFUSALS = {  # conference_backend.passwords' refusal -> the page's sentence
    "bad-credentials": "bad_credentials",
    "busy": "signin_busy",
    "directory-down": "directory_down",
    "server-down": "server_down",
}


async def login_page(request: web.Request) -> web.StreamResponse:
    if user(request, await session(request)) is not None:
        raise web.HTTPSeeOther("/")
    return await render(request, "portal/login.html", {"error": "", "login": ""})


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await check_csrf(request)
    lang = await language(request)
    t = TEXT[lang]
    login = str(form.get("login") or "").strip().lower()[:64]
    password = str(form.get("password") or "")
    # Checked by the CalDAV server's one throttle, counted for this person's address.
    address = client_address(request, request.app[PORTAL].settings.limits.trusted_proxies)
    checked = await check_password(request.app, login, password, address, "portal")
    if checked.account is None:
        error = t[SIGN_IN_REFUSALS[checked.refusal]]
        is_busy = checked.refusal == "busy"
        page = await render(
            request,
            "portal/login.html",
            {"error": error, "login": login},
            status=503 if is_busy else 401,
        )
        if is_busy:
            page.headers["Retry-After"] = str(checked.retry_after)
        return page
    s = await session(request)
    s.invalidate()  # a fresh session (and CSRF token) after signing in: no fixation
    s = await session(request)
    sign_in(request, s, login)
    s["lang"] = lang
    s["tz"] = str(form.get("tz") or "")[:64]
    s["tz"] = str(zone(s))
    log.info("portal sign-in: %s", login)
    raise web.HTTPSeeOther("/")


async def logout(request: web.Request) -> web.StreamResponse:
    await check_csrf(request)
    lang = await language(request)
    sign_out(request, await session(request))
    raise web.HTTPSeeOther(f"/login?lang={lang}")


# home ------------------------------------------------------------------------------
@signed_in
async def home(request: web.Request, me: Account) -> web.StreamResponse:
    tz = zone(await session(request))
    now = dt.datetime.now(tz)
    day = dt.datetime.combine(now.date(), dt.time(), tz)
    try:
        today = await shown_between(request, me, day, day + dt.timedelta(days=1), tz)
    except (CalDavError, OSError, TimeoutError):
        today = []
    return await render(
        request,
        "portal/home.html",
        {
            "today": today,
            "flash": await take_flash(request),
            "now": now,
            "may_book": may_book(request, me),
        },
    )


# plan --------------------------------------------------------------------------
def form_context(
    form: meetings.Form, errors: dict[str, tuple[str, str]], lang: str
) -> dict[str, Any]:
    t = TEXT[lang]
    messages = {k: t[key].format(value=v) for k, (key, v) in errors.items()}
    return {
        "form": form,
        "errors": messages,
        "days": list(zip(meetings.DAYS, t["weekdays"].split(","), strict=True)),
    }


def stamp(moment: dt.datetime) -> str:
    return moment.strftime("%d.%m.%Y %H:%M")


def warning_lines(found: list[busy.Warning], lang: str, tz: ZoneInfo) -> list[str]:
    t = TEXT[lang]
    return [
        t["busy_title" if w.title else "busy"].format(
            who=w.who,
            title=w.title,
            organizer=w.organizer,
            start=stamp(w.start.astimezone(tz)),
            end=w.end.astimezone(tz).strftime("%H:%M"),
        )
        for w in found
    ]


@signed_in
async def plan_page(request: web.Request, me: Account) -> web.StreamResponse:
    if not may_book(request, me):
        return await not_allowed(request)
    tz = zone(await session(request))
    now = dt.datetime.now(tz)
    start = (now + dt.timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    form = meetings.Form(
        date=start.date().isoformat(),
        start=start.strftime("%H:%M"),
        duration="60",
        end=(start + dt.timedelta(hours=1)).strftime("%H:%M"),
    )
    lang = await language(request)
    return await render(request, "portal/plan.html", {**form_context(form, {}, lang)})


@signed_in
async def plan_post(request: web.Request, me: Account) -> web.StreamResponse:
    data = await check_csrf(request)
    if not may_book(request, me):
        return await not_allowed(request)
    lang = await language(request)
    tz = zone(await session(request))
    form = meetings.Form.from_post(data, data["__days"])
    draft, errors = meetings.validate(form, tz)
    context = form_context(form, errors, lang)
    if draft is None:
        return await render(request, "portal/plan.html", context, status=400)
    client = caldav(request)
    if not data.get("confirm"):
        portal = request.app[PORTAL]
        titles = portal.settings.show_busy_titles
        found = await busy.warnings(client, portal.accounts(), me, draft, titles=titles)
        if found:
            context["warnings"] = warning_lines(found, lang, tz)
            return await render(request, "portal/plan.html", context, status=409)
    cal = meetings.new_event(draft, me)
    uid = ical.uid_of(cal)
    href = await client.calendar(me.login) + quote(uid) + ".ics"
    try:
        await client.put(me.login, href, meetings.serialize(cal))
    except CalDavError as e:
        context["errors"]["form"] = TEXT[lang]["err_save"].format(reason=e.reason)
        return await render(request, "portal/plan.html", context, status=502)
    log.info("portal: %s planned %s", me.login, uid)
    await flash(request, "saved")
    rid = occurrences.rid_text(draft.start)
    raise web.HTTPSeeOther("/meeting?" + urlencode({"href": href, "rid": rid}))


# instant meeting -------------------------------------------------------------------
@signed_in
async def instant_post(request: web.Request, me: Account) -> web.StreamResponse:
    await check_csrf(request)
    if not may_book(request, me):
        return await not_allowed(request)
    lang = await language(request)
    tz = zone(await session(request))
    now = dt.datetime.now(tz).replace(second=0, microsecond=0)
    draft = meetings.Draft(
        subject=TEXT[lang]["instant_subject"],
        start=now,
        duration=dt.timedelta(hours=1),
        days=(),
        until=None,
        invitees=(),
        kind="visio",
        record=False,
        stream_url="",
        description="",
    )
    client = caldav(request)
    cal = meetings.new_event(draft, me)
    href = await client.calendar(me.login) + quote(ical.uid_of(cal)) + ".ics"
    await client.put(me.login, href, meetings.serialize(cal))
    raise web.HTTPSeeOther("/instant?" + urlencode({"href": href}))


@signed_in
async def instant_page(request: web.Request, me: Account) -> web.StreamResponse:
    href = request.query.get("href", "")
    stored = await caldav(request).get(me.login, href)
    uid = ical.uid_of(ical.parse(stored.text)) if stored else ""
    # The room is the one the registry gives this account's own copy: a room id
    # written into an event (an attendee's copy, a forged one) grants nothing.
    row = request.app[keys.REGISTRY].by_owner_uid(me.login, uid) if uid else None
    if row is None or unquote(href).strip("/") != f"{row.calendar_path}/{row.href}":
        raise web.HTTPNotFound()
    portal = request.app[PORTAL]
    token = tokens.room_token(portal.key, row.room_id)
    # The organizer enters at once as themselves: the room's own resume token (what
    # a reload uses) is handed to the room page through sessionStorage.
    person = Person(me.name or me.login, me.login, me.email)
    resume = resume_token(portal.key, row.room_id, new_participant_id(), person)
    return await render(
        request,
        "portal/instant.html",
        {
            "link": portal.settings.join_prefix + token,
            "socket": f"/ws/{token}",
            "resume": resume,
        },
    )


# invitee suggestions from the directory --------------------------------------------
@signed_in
async def suggest(request: web.Request, me: Account) -> web.StreamResponse:
    q = request.query.get("q", "").strip().lower()[:64]
    if len(q) < 2:
        return web.json_response([])
    found = [
        {"email": a.email, "name": a.name, "entity": a.entity}
        for a in request.app[PORTAL].accounts().list(disabled=False)
        if q in a.login or q in a.email.lower() or q in a.name.lower()
    ][:10]
    return web.json_response(found, headers={"Cache-Control": "no-store"})


def setup(app: web.Application) -> None:
    app.router.add_get("/", home)
    app.router.add_get("/login", login_page)
    app.router.add_post("/login", login_post)
    app.router.add_post("/logout", logout)
    app.router.add_get("/plan", plan_page)
    app.router.add_post("/plan", plan_post)
    app.router.add_post("/instant", instant_post)
    app.router.add_get("/instant", instant_page)
    app.router.add_get("/suggest", suggest)
