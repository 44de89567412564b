"""Join links: `/j/{token}` answers with the meeting's room page, or the one 404 page.

An unknown, malformed or retired token takes the same path (hash, one indexed
lookup, the same template), so the answer tells nothing about which it was.
The page itself is static HTML plus ES modules; it talks to `/ws/{token}`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

import aiohttp_jinja2
from aiohttp import web

from conference_backend import keys
from conference_backend.i18n import PAGES, ROOM, request_language
from conference_backend.nodes import ROUTER
from visio_core import ical, schedule, tokens, when
from visio_core.categories import RoomKind
from visio_core.tokens import valid_token

log = logging.getLogger("visio.join")


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
    admission = request.app[keys.LINKS].lookup(digest)
    if admission is None or not valid_token(token):
        return not_found(request)
    room = admission.room
    settings = request.app[keys.SETTINGS]
    lang = request_language(request)
    t = PAGES[lang]
    occurrence = None
    try:
        occurrence = when.next_occurrence(ical.parse(room.event), dt.datetime.now(dt.UTC))
    except Exception:  # a stored event the occurrence engine cannot read: show the title
        log.exception("cannot compute the next occurrence of room %s", room.room_id)
    audio = room.kind is RoomKind.AUDIO
    now = dt.datetime.now(dt.UTC)
    # "prejoin": open (or opening soon for someone already inside): the pre-join screen.
    state, opens_at = "prejoin", None
    if not await request.app[ROUTER].people(room.room_id):
        try:
            win = schedule.window(
                room.event,
                now,
                dt.timedelta(minutes=settings.early_join_minutes),
                dt.timedelta(minutes=settings.room_grace_minutes),
            )
            state = {"open": "prejoin", "waiting": "waiting", "ended": "closed"}[win.state]
            opens_at = win.opens_at.isoformat() if win.opens_at else None
        except Exception:
            log.exception("cannot compute the window of room %s", room.room_id)
    options = room.options or {}
    recorded = bool(options.get("record"))
    streamed = bool(str(options.get("stream_url") or "").strip())
    consent = "both" if recorded and streamed else "recorded" if recorded else "streamed"
    config = {
        "state": state,
        "recording": consent if recorded or streamed else "",
        "recordStart": settings.record_start,  # "button": the organizer starts it
        "opensAt": opens_at,
        "serverTime": now.isoformat(),
        "socket": f"/ws/{token}",
        "lang": lang,
        "kind": room.kind.value,
        "personal": admission.person is not None,
        "name": admission.person.name if admission.person else "",
        "chatMax": settings.limits.chat_max_length,
        "visibleThumbnails": settings.visible_thumbnails,
        "t": ROOM[lang],
    }
    context = {
        "lang": lang,
        "t": t,
        "r": ROOM[lang],
        "audio": audio,
        "summary": room.summary or (t["kind_audio"] if audio else t["kind_video"]),
        "kind_label": t["kind_audio"] if audio else t["kind_video"],
        "when": when.format_range(occurrence, lang) if occurrence else "",
        "when_iso": occurrence.start.isoformat() if occurrence else "",
        "opens": t["room_opens"].format(minutes=settings.early_join_minutes),
        "phone": t["phone"].format(number=settings.dialin_number, room=room.room_number)
        if settings.dialin_number
        else "",
        # JSON inside <script type="application/json">: "</" must not close the tag.
        "state": state,
        # Recorded or live-streamed: a notice to accept before entering, an indicator inside.
        "recording": consent if recorded or streamed else "",
        "record_button": bool(recorded or streamed) and settings.record_start == "button",
        "chat_max": settings.limits.chat_max_length,
        "config": json.dumps(config, ensure_ascii=False).replace("</", "<\\/"),
    }
    response = aiohttp_jinja2.render_template("join.html", request, context)
    response.headers["Cache-Control"] = "no-store"
    return response
