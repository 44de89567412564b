"""Calendrier (Jour / Semaine / Mois), the lists, and one meeting: show, save, delete."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import web

from conference_backend.portal import busy, meetings, occurrences
from conference_backend.portal.caldav_client import CalDavError
from conference_backend.portal.routes import (
    caldav,
    flash,
    form_context,
    shown_between,
    take_flash,
    warning_lines,
)
from conference_backend.portal.session import (
    PORTAL,
    check_csrf,
    language,
    render,
    session,
    signed_in,
    zone,
)
from conference_backend.portal.texts import TEXT
from visio_core import conference, ical, itip, recurrence
from visio_core.accounts import Account

log = logging.getLogger("visio.portal")
VIEWS = ("day", "week", "month")
MONTH_CELL = 4  # meetings shown in a month's day, before "+N"


def _period(view: str, day: dt.date) -> tuple[dt.date, dt.date, dt.date, dt.date]:
    """(first shown day, day after the last, previous anchor, next anchor)."""
    if view == "day":
        return (
            day,
            day + dt.timedelta(days=1),
            day - dt.timedelta(days=1),
            day + dt.timedelta(days=1),
        )
    if view == "week":
        first = day - dt.timedelta(days=day.weekday())
        return (
            first,
            first + dt.timedelta(days=7),
            day - dt.timedelta(days=7),
            day + dt.timedelta(days=7),
        )
    first_of_month = day.replace(day=1)
    next_month = (first_of_month + dt.timedelta(days=32)).replace(day=1)
    prev_month = (first_of_month - dt.timedelta(days=1)).replace(day=1)
    grid_start = first_of_month - dt.timedelta(days=first_of_month.weekday())
    grid_end = next_month + dt.timedelta(days=(7 - next_month.weekday()) % 7)
    return grid_start, grid_end, prev_month, next_month


def _title(view: str, first: dt.date, day: dt.date, lang: str) -> str:
    t = TEXT[lang]
    months = t["months"].split(",")
    if view == "month":
        return f"{months[day.month - 1]} {day.year}"
    if view == "week":
        last = first + dt.timedelta(days=6)
        head = f"{first.day} {months[first.month - 1]}"
        return f"{head} – {last.day} {months[last.month - 1]} {last.year}"
    names = t["weekdays_long"].split(",")
    return f"{names[day.weekday()]} {day.day} {months[day.month - 1]} {day.year}"


def _hour_grid(
    found: list[occurrences.Occurrence],
) -> tuple[list[int], dict[tuple[dt.date, int], list[occurrences.Occurrence]]]:
    """The seed's Jour/Semaine grid: one row per hour, working hours always shown."""
    cells: dict[tuple[dt.date, int], list[occurrences.Occurrence]] = {}
    for occ in found:
        cells.setdefault((occ.start.date(), occ.start.hour), []).append(occ)
    first = min([8, *(hour for _, hour in cells)])
    last = max([18, *(hour for _, hour in cells)])
    return list(range(first, last + 1)), cells


@signed_in
async def calendar(request: web.Request, me: Account) -> web.StreamResponse:
    tz = zone(await session(request))
    lang = await language(request)
    view = request.query.get("view", "week")
    view = view if view in VIEWS else "week"
    today = dt.datetime.now(tz).date()
    try:
        day = dt.date.fromisoformat(request.query.get("date", ""))
    except ValueError:
        day = today
    first, after, prev, nxt = _period(view, day)
    start = dt.datetime.combine(first, dt.time(), tz)
    end = dt.datetime.combine(after, dt.time(), tz)
    more: dict[dt.date, int] = {}
    if view == "month":  # a cell shows four meetings, then "+N"
        portal = request.app[PORTAL]
        by_day, more = await occurrences.by_day(
            caldav(request), portal.agenda(), me, start, end, tz, portal.cache, MONTH_CELL
        )
        found = [occ for day in by_day.values() for occ in day]
    else:
        found = await shown_between(request, me, start, end, tz)
        by_day = {}
        for occ in found:
            by_day.setdefault(occ.start.date(), []).append(occ)
    days = [first + dt.timedelta(days=i) for i in range((after - first).days)]
    weeks = [days[i : i + 7] for i in range(0, len(days), 7)]
    hours, cells = _hour_grid(found) if view != "month" else ([], {})
    return await render(
        request,
        "portal/calendar.html",
        {
            "view": view,
            "day": day,
            "today": today,
            "days": days,
            "weeks": weeks,
            "by_day": by_day,
            "more": more,
            "hours": hours,
            "cells": cells,
            "weekdays_long": TEXT[lang]["weekdays_long"].split(","),
            "months": TEXT[lang]["months"].split(","),
            "title": _title(view, first, day, lang),
            "prev": prev.isoformat(),
            "next": nxt.isoformat(),
            "weekdays": TEXT[lang]["weekdays"].split(","),
            "count": len(found) + sum(more.values()),
            "flash": await take_flash(request),
        },
    )


@signed_in
async def meeting_list(request: web.Request, me: Account) -> web.StreamResponse:
    """Toutes vos réunions (a year ahead), Réunions du jour, or a Période, with a filter."""
    tz = zone(await session(request))
    when = request.query.get("when", "all")
    when = when if when in ("all", "today", "period") else "all"
    today = dt.datetime.now(tz).date()
    first, last = today, today + dt.timedelta(days=365)
    if when == "today":
        last = today
    errors: dict[str, tuple[str, str]] = {}
    if when == "period":
        first, last, errors = _period_asked(request.query, today)
    words = request.query.get("q", "").strip()[:100]
    found: list[occurrences.Occurrence] = []
    if not errors:
        start = dt.datetime.combine(first, dt.time(), tz)
        found = await shown_between(
            request, me, start, start + dt.timedelta(days=(last - first).days + 1), tz
        )
        if words:
            found = [o for o in found if words.casefold() in o.title.casefold()]
    lang = await language(request)
    return await render(
        request,
        "portal/list.html",
        {
            "when": when,
            "items": found,
            "first": first.isoformat(),
            "last": last.isoformat(),
            "q": words,
            "errors": {k: TEXT[lang][v[0]].format(value=v[1]) for k, v in errors.items()},
        },
        status=400 if errors else 200,
    )


MAX_PERIOD = dt.timedelta(days=731)


def _period_asked(
    query: Any, today: dt.date
) -> tuple[dt.date, dt.date, dict[str, tuple[str, str]]]:
    """The Période asked for (Du, Au): both dates, in order, two years at most."""
    errors: dict[str, tuple[str, str]] = {}
    dates = []
    for field, default in (("from", today), ("to", today + dt.timedelta(days=30))):
        text = query.get(field, "").strip()
        try:
            dates.append(dt.date.fromisoformat(text) if text else default)
        except ValueError:
            errors[field] = ("err_date", text)
            dates.append(default)
    first, last = dates
    if not errors and not first <= last <= first + MAX_PERIOD:
        errors["to"] = ("err_period", "")
    return first, last, errors


# one meeting -------------------------------------------------------------------------
async def _load(
    request: web.Request, me: Account, href: str, rid_text: str
) -> tuple[Any, Any, Any, str]:
    stored = await caldav(request).get(me.login, href)
    if stored is None:
        raise web.HTTPNotFound()
    cal = ical.parse(stored.text)
    rid = occurrences.parse_rid(rid_text)
    occ = occurrences.occurrence_of(cal, rid)
    if occ is None:
        raise web.HTTPNotFound()
    return cal, occ, rid, stored.etag


def _details(occ: Any, settings: Any, lang: str) -> dict[str, Any]:
    link = ""
    phone = ""
    for c in (
        occ.get("CONFERENCE", [])
        if isinstance(occ.get("CONFERENCE"), list)
        else [occ.get("CONFERENCE")]
    ):
        if c is None:
            continue
        value = str(c)
        if value.startswith("http"):
            link = link or value
    if not link and str(occ.get("URL", "")).startswith("http"):
        link = str(occ.get("URL"))
    number = str(occ.get(conference.ROOM_NUMBER_PROP, ""))
    if settings.dialin_number and number:
        phone = TEXT[lang]["phone_text"].format(number=settings.dialin_number, room=number)
    people = []
    for address, att in itip.attendees(occ).items():
        partstat = str(att.params.get("PARTSTAT", "NEEDS-ACTION")).upper()
        people.append(
            {"address": address, "name": str(att.params.get("CN", "")), "partstat": partstat}
        )
    return {"link": link, "phone": phone, "people": people}


async def _show(
    request: web.Request,
    me: Account,
    href: str,
    rid_text: str,
    form: meetings.Form | None = None,
    errors: dict[str, tuple[str, str]] | None = None,
    warnings: list[str] | None = None,
    action: str = "",
    status: int = 200,
) -> web.Response:
    tz = zone(await session(request))
    lang = await language(request)
    cal, occ, _, etag = await _load(request, me, href, rid_text)
    master = conference.master(cal)
    mine = occurrences.is_mine(cal, me)
    if form is None:
        form = meetings.form_of(occ, master, tz, me.email)
    context = form_context(form, errors or {}, lang)
    context.update(_details(occ, request.app[PORTAL].settings, lang))
    if not mine:
        context["people"] = [p for p in context["people"] if p["address"] == me.email.lower()]
    context.update(
        {
            "href": href,
            "rid": rid_text,
            "etag": etag,
            "mine": mine,
            "recurring": meetings.is_recurring(cal),
            "title": str(occ.get("SUMMARY", "")),
            "warnings": warnings or [],
            "action": action,
            "flash": await take_flash(request),
        }
    )
    return await render(request, "portal/meeting.html", context, status=status)


@signed_in
async def meeting_page(request: web.Request, me: Account) -> web.StreamResponse:
    return await _show(request, me, request.query.get("href", ""), request.query.get("rid", ""))


def _own_slots(
    cal: Any, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    try:
        found = recurrence.between(cal, start, end)
    except recurrence.TooCostly:
        return []
    return [
        (e["DTSTART"].dt, e["DTEND"].dt) for e in found if isinstance(e["DTSTART"].dt, dt.datetime)
    ]


@signed_in
async def meeting_post(request: web.Request, me: Account) -> web.StreamResponse:
    data = await check_csrf(request)
    lang = await language(request)
    tz: ZoneInfo = zone(await session(request))
    href, rid_text = str(data.get("href", "")), str(data.get("rid", ""))
    action = str(data.get("action", ""))
    cal, _, rid, etag = await _load(request, me, href, rid_text)
    if not occurrences.is_mine(cal, me):
        raise web.HTTPForbidden(text=TEXT[lang]["not_yours"])
    client = caldav(request)
    back = "/meeting?" + urlencode({"href": href, "rid": rid_text})
    if action == "delete_series" or (action == "delete" and not meetings.is_recurring(cal)):
        await client.delete(me.login, href)
        await flash(request, "deleted")
        raise web.HTTPSeeOther("/calendar")
    if action == "delete" and rid is not None:
        await client.put(
            me.login, href, meetings.serialize(meetings.delete_occurrence(cal, rid)), etag
        )
        await flash(request, "deleted_occurrence")
        week = rid.astimezone(tz).date().isoformat()  # back to where the person was
        raise web.HTTPSeeOther(f"/calendar?view=week&date={week}")
    if action not in ("save", "save_series"):
        raise web.HTTPSeeOther(back)
    form = meetings.Form.from_post(data, data["__days"])
    whole, errors = meetings.validate(form, tz)
    # The edited occurrence starts on the Date field; Périodicité only shapes the rule.
    one, one_errors = meetings.validate(dataclasses.replace(form, periodic=False), tz)
    if whole is None or one is None:
        return await _show(request, me, href, rid_text, form, errors or one_errors, status=400)
    draft = dataclasses.replace(one, days=whole.days, until=whole.until)
    if not data.get("confirm"):
        ignore = _own_slots(
            cal, draft.start - dt.timedelta(days=1), draft.start + meetings.MAX_RANGE
        )
        checked = one if action == "save" else draft
        portal = request.app[PORTAL]
        found = await busy.warnings(
            client,
            portal.accounts(),
            me,
            checked,
            ignore,
            titles=portal.settings.show_busy_titles,
            uid=ical.uid_of(cal),
        )
        if found:
            lines = warning_lines(found, lang, tz)
            return await _show(request, me, href, rid_text, form, {}, lines, action, status=409)
    if action == "save" and rid is not None and meetings.is_recurring(cal):
        new = meetings.save_occurrence(cal, rid, one, me)
        key = "saved_occurrence"
        rid_next = rid_text
    else:
        new, shift = meetings.save_series(cal, rid, draft, me)
        key = "saved_series" if meetings.is_recurring(cal) else "saved"
        moved = rid + shift if rid is not None else new_start(new)
        rid_next = occurrences.rid_text(moved)
    try:
        await client.put(me.login, href, meetings.serialize(new), etag)
    except CalDavError as e:
        errs = {"form": ("err_save", e.reason)}
        return await _show(request, me, href, rid_text, form, errs, status=502)
    await flash(request, key)
    raise web.HTTPSeeOther("/meeting?" + urlencode({"href": href, "rid": rid_next}))


def new_start(cal: Any) -> dt.datetime:
    master: Any = conference.master(cal)
    start: dt.datetime = master["DTSTART"].dt
    return start


def setup(app: web.Application) -> None:
    app.router.add_get("/calendar", calendar)
    app.router.add_get("/meetings", meeting_list)
    app.router.add_get("/meeting", meeting_page)
    app.router.add_post("/meeting", meeting_post)
