"""`POST /recordings/control/{token}`: the organizer's start/stop buttons in the room.

Only with VISIO_RECORD_START=button. The page proves who it is with its room
session (the resume token signalling gave it): the request is honoured for the
room's organizer, signed in and inside the room, and refused for anyone else.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from visio_core import tokens
from visio_core.identity import check_resume
from visio_core.tokens import valid_token
from visio_rooms import keys

if TYPE_CHECKING:
    from visio_rooms.recorder.service import RecordingService


def setup(app: web.Application, service: web.AppKey[RecordingService]) -> None:
    async def control(request: web.Request) -> web.Response:
        token = request.match_info["token"]
        admission = request.app[keys.LINKS].lookup(tokens.hash_token(token))
        if admission is None or not valid_token(token):
            raise web.HTTPNotFound()
        try:
            body = await request.json()
        except ValueError as e:
            raise web.HTTPBadRequest() from e
        if not isinstance(body, dict) or body.get("action") not in ("start", "stop"):
            raise web.HTTPBadRequest()
        room_id = admission.room.room_id
        resumed = check_resume(request.app[keys.SERVER_KEY], room_id, body.get("session"))
        live = request.app[keys.ROOMS].get(room_id)
        if resumed is None or live is None or resumed[0] not in live.participants:
            raise web.HTTPForbidden()
        done = await request.app[service].control(
            room_id, resumed[1].login, body["action"] == "start"
        )
        if not done:
            raise web.HTTPForbidden()
        return web.json_response({"ok": True})

    app.router.add_post("/recordings/control/{token}", control)
