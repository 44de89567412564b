"""Join links: `/j/{token}` answers with the meeting's page, or the one 404 page.

An unknown, malformed or retired token takes the same path (hash, one indexed
lookup, the same template), so the answer tells nothing about which it was.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import aiohttp_jinja2
from aiohttp import web

from conference_backend import keys
from conference_backend.i18n import PAGES, request_language
from visio_core import ical, tokens, when
from visio_core.categories import RoomKind

log = logging.getLogger("visio.join")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def not_found(request: web.Request) -> web.Response:
    lang = request_language(request)
    response = aiohttp_jinja2.render_template(
        "not_found.html", request, {"lang": lang, "t": PAGES[lang]}, status=404
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def join_page(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    digest = tokens.hash_token(token)  # hashed even when malformed: same cost either way
    room = request.app[keys.REGISTRY].by_token_hash(digest)
    if room is None or not _TOKEN_RE.match(token):
        return not_found(request)
    settings = request.app[keys.SETTINGS]
    lang = request_language(request)
    t = PAGES[lang]
    occurrence = None
    try:
        occurrence = when.next_occurrence(ical.parse(room.event), dt.datetime.now(dt.UTC))
    except Exception:  # a stored event the occurrence engine cannot read: show the title
        log.exception("cannot compute the next occurrence of room %s", room.room_id)
    context = {
        "lang": lang,
        "t": t,
        "summary": room.summary or t["kind_video"],
        "kind_label": t["kind_audio"] if room.kind is RoomKind.AUDIO else t["kind_video"],
        "when": when.format_range(occurrence, lang) if occurrence else "",
        "when_iso": occurrence.start.isoformat() if occurrence else "",
        "opens": t["room_opens"].format(minutes=settings.early_join_minutes),
        "phone": t["phone"].format(number=settings.dialin_number, room=room.room_number)
        if settings.dialin_number
        else "",
    }
    response = aiohttp_jinja2.render_template("join.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response
