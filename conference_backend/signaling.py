"""The signalling WebSocket, `/ws/{token}`: JSON messages, described in docs/signaling.md.

One Session per socket walks: join → (waiting) → (lobby) → joined. Everything a
client says is checked here before it reaches the room.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

from aiohttp import WSMsgType, web

from conference_backend import keys, rtc, schedule
from conference_backend.identity import (
    Admission,
    Person,
    check_resume,
    clean_name,
    is_invited,
    resume_token,
)
from conference_backend.join import valid_token
from conference_backend.participant import Participant, new_participant_id
from conference_backend.rooms import CLOSED_CODE, Knock, LiveRoom
from visio_core import tokens

log = logging.getLogger("visio.signaling")
MAX_MESSAGE = 256 * 1024
MAX_CHAT = 2000


class Session:
    def __init__(self, app: web.Application, admission: Admission, ws: web.WebSocketResponse):
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.admission = admission
        self.ws = ws
        self.room: LiveRoom | None = None
        self.participant: Participant | None = None
        self.knock: Knock | None = None

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_json(message)

    async def refuse(self, reason: str) -> None:
        await self.send({"type": "closed", "reason": reason})
        await self.ws.close(code=CLOSED_CODE, message=reason.encode())

    # the join step ------------------------------------------------------
    async def join(self, msg: dict[str, Any]) -> None:
        if self.participant is not None or self.knock is not None:
            return
        row = self.app[keys.REGISTRY].by_id(self.admission.room.room_id)
        if row is None or row.token_hash != self.admission.room.token_hash:
            await self.refuse("deleted")
            return
        manager = self.app[keys.ROOMS]
        live = manager.get(row.room_id)
        occurrence, around = None, None
        if live is None or not live.participants:
            now = dt.datetime.now(dt.UTC)
            window = schedule.window(
                row.event,
                now,
                dt.timedelta(minutes=self.settings.early_join_minutes),
                dt.timedelta(minutes=self.settings.room_grace_minutes),
            )
            if window.state == "waiting" and window.opens_at is not None:
                await self.send(
                    {
                        "type": "waiting",
                        "opensAt": window.opens_at.isoformat(),
                        "start": window.start.isoformat() if window.start else None,
                        "serverTime": now.isoformat(),
                    }
                )
                return
            if window.state == "ended":
                await self.refuse("ended")
                return
            occurrence, around = window.occurrence, window.start
        key = self.app[keys.SERVER_KEY]
        person: Person | None = None
        direct = False
        pid = new_participant_id()
        resumed = check_resume(key, row.room_id, msg.get("resume"))
        if resumed is not None:
            pid, person = resumed
            direct = True
        elif self.admission.person is not None:
            person, direct = self.admission.person, True
        elif msg.get("login"):
            account = await asyncio.get_running_loop().run_in_executor(
                None,
                self.app[keys.ACCOUNTS].verify,
                str(msg.get("login", ""))[:64],
                str(msg.get("password", ""))[:1024],
            )
            if account is None:
                await self.send({"type": "error", "reason": "bad-credentials"})
                return
            person = Person(account.name, account.login, account.email)
            direct = is_invited(
                self.app[keys.ACCOUNTS], account, row, schedule.invited_addresses(row.event)
            )
        else:
            name = clean_name(msg.get("name"))
            if not name:
                await self.send({"type": "error", "reason": "name-required"})
                return
            person = Person(name)
        if not direct and not schedule.lobby_enabled(row.event, row.options):
            direct = True
        room = manager.open(row, occurrence, around)
        self.room = room
        if len(room.participants) >= self.settings.room_capacity and pid not in room.participants:
            await self.refuse("full")
            return
        if direct:
            await self.enter(pid, person)
        else:
            self.knock = Knock(pid, person, self.ws, lambda: self.enter(pid, person))
            room.knocks[pid] = self.knock
            await self.send({"type": "lobby", "you": {"id": pid, "name": person.name}})
            await room.broadcast({"type": "knock", **self.knock.public()})

    async def enter(self, pid: str, person: Person) -> None:
        room = self.room
        assert room is not None
        if self.ws.closed:
            return
        if self.knock is not None:
            room.knocks.pop(self.knock.id, None)
            self.knock = None
            await room.broadcast({"type": "knock-resolved", "id": pid})
        p = Participant(pid, person, self.ws, announced=self.settings.ice_announced_address)
        self.participant = p
        await self.send(
            {
                "type": "joined",
                "you": {"id": pid, "name": person.name},
                "session": resume_token(self.app[keys.SERVER_KEY], room.id, pid, person),
                "kind": room.row.kind.value,
                "participants": [q.public() for q in room.participants.values() if q.id != pid],
                "speaker": room.speaker,
                "speaking": sorted(room.speaking),
                "screen": room.screen_owner,
                "iceServers": rtc.browser_ice_servers(self.settings),
                "chat": list(room.chat),
                "knocks": [k.public() for k in room.knocks.values()],
            }
        )
        await room.add(p)

    # after joining --------------------------------------------------------
    async def handle(self, msg: dict[str, Any]) -> None:
        kind = msg.get("type")
        if kind == "join":
            await self.join(msg)
            return
        if kind == "ping":
            await self.send({"type": "pong"})
            return
        p, room = self.participant, self.room
        if p is None or room is None:
            return  # everything else needs to be inside
        if kind == "publish":
            sources = msg.get("sources") if isinstance(msg.get("sources"), dict) else {}
            answer = await p.accept_publish(
                str(msg.get("sdp", "")),
                {str(k): str(v) for k, v in (sources or {}).items()},
                room.published,
                room.level_sink(p.id),
            )
            await self.send({"type": "publish-answer", "sdp": answer})
        elif kind == "answer":
            p.answer_received(str(msg.get("sdp", "")))
        elif kind == "media":
            p.audio = bool(msg.get("audio", p.audio))
            p.video = bool(msg.get("video", p.video))
            await room.broadcast({"type": "participant-updated", "participant": p.public()})
        elif kind == "screen":
            await room.set_screen(p, bool(msg.get("on")))
        elif kind == "chat":
            text = str(msg.get("text", "")).strip()[:MAX_CHAT]
            if text:
                line = {
                    "type": "chat",
                    "from": p.id,
                    "name": p.name,
                    "text": text,
                    "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                }
                room.chat.append(line)
                await room.broadcast(line)
        elif kind in ("admit", "refuse"):
            knock = room.knocks.pop(str(msg.get("id")), None)
            if knock is None:
                return
            await room.broadcast({"type": "knock-resolved", "id": knock.id})
            if kind == "admit" and len(room.participants) < self.settings.room_capacity:
                await knock.admit()
            else:
                reason = "refused" if kind == "refuse" else "full"
                await knock.ws.send_json({"type": "closed", "reason": reason})
                await knock.ws.close(code=CLOSED_CODE, message=reason.encode())
        elif kind == "leave":
            await self.ws.close()

    async def cleanup(self) -> None:
        room = self.room
        if room is None:
            return
        if self.knock is not None and room.knocks.get(self.knock.id) is self.knock:
            del room.knocks[self.knock.id]
            await room.broadcast({"type": "knock-resolved", "id": self.knock.id})
        if self.participant is not None:
            await room.remove(self.participant)


async def room_socket(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    admission = request.app[keys.LINKS].lookup(tokens.hash_token(token))
    if admission is None or not valid_token(token):
        raise web.HTTPNotFound()
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    session = Session(request.app, admission, ws)
    try:
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                continue
            try:
                data = json.loads(message.data)
            except ValueError:
                continue
            if not isinstance(data, dict):
                continue
            try:
                await session.handle(data)
            except Exception:  # one bad message (an SDP we cannot use) must not drop the call
                log.exception("signalling message %r failed", data.get("type"))
                await session.send({"type": "error", "reason": "bad-message"})
    finally:
        await session.cleanup()
    return ws
