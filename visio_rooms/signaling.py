"""The signalling WebSocket, `/ws/{token}`: JSON messages, described in docs/signaling.md.

One Session per socket walks: join → (waiting) → (lobby) → joined. Everything a
client says is checked here before it reaches the room, and counted: open
sockets per address, a deadline for `join`, token buckets per socket, the
lobby's size and a cool-down after a refusal (visio_core/limits.py). Once
inside, what a participant may say is decided in inside.py.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from visio_core import schedule, tokens
from visio_core.identity import (
    Admission,
    Person,
    check_resume,
    check_signed_in,
    clean_name,
    is_invited,
    resume_token,
)
from visio_core.placement import CLIENT_HEADER
from visio_core.registry import Room
from visio_core.tokens import new_participant_id, valid_token
from visio_rooms import inside, keys, rtc
from visio_rooms.limits import MessageLimiter
from visio_rooms.lobby import RESTART, Knock
from visio_rooms.participant import Participant
from visio_rooms.rooms import CLOSED_CODE, LiveRoom

log = logging.getLogger("visio.signaling")
MAX_MESSAGE = 256 * 1024


class Session:
    def __init__(
        self,
        app: web.Application,
        admission: Admission,
        ws: web.WebSocketResponse,
        *,
        token_hash: str = "",
        address: str = "",
    ):
        self.app = app
        self.settings = app[keys.SETTINGS]
        self.limits = self.settings.limits
        self.admission = admission
        self.ws = ws
        self.token_hash = token_hash
        self.address = address
        self.room: LiveRoom | None = None
        self.participant: Participant | None = None
        self.knock: Knock | None = None
        self.limiter = MessageLimiter(self.limits)
        self.asked = False  # sent a `join` (sockets that never do are closed)

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
        elif msg.get("signedIn"):
            # The front checked the password (front/proxy.py): the worker never sees one.
            login = check_signed_in(key, row.room_id, msg.get("signedIn"))
            account = self.app[keys.ACCOUNTS].get(login) if login else None
            if account is None or account.disabled:
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
        marks = self._marks(pid, person)
        if room.removals.banned(marks):
            direct = False  # removed from this meeting: back only if someone lets them in
        if direct:
            await self.enter(pid, person, marks)
            return
        cooldown = self._cooldown_keys(person)
        clock = asyncio.get_running_loop().time()
        wait = manager.cooldowns.remaining(room.id, cooldown, clock)
        if wait > 0:
            await self.send({"type": "error", "reason": "cool-down", "retryAfter": round(wait)})
            return
        if len(room.knocks) >= self.limits.lobby_max_knocks:
            log.info("room %s: lobby full, a knock from %s refused", room.id, self.address)
            await self.refuse("lobby-full")
            return
        self.knock = Knock(
            pid,
            person.name,
            lambda: self.enter(pid, person, marks),
            self.dismiss,
            marks=marks,
            cooldown=cooldown,
        )
        room.knocks[pid] = self.knock
        await self.send({"type": "lobby", "you": {"id": pid, "name": person.name}})
        await room.broadcast({"type": "knock", **self.knock.public()})

    def _marks(self, pid: str, person: Person) -> frozenset[str]:
        """How a removal would recognise this entrant again (lobby.py)."""
        marks = {f"pid:{pid}"}
        if self.admission.person is not None:
            marks.add(f"link:{self.token_hash}")
        if person.login:
            marks.add(f"login:{person.login}")
        if self.admission.person is None and not person.login:
            marks.add(f"addr:{self.address}")  # a guest of the shared link: where from
        return frozenset(marks)

    def _cooldown_keys(self, person: Person) -> frozenset[str]:
        keys_ = {f"addr:{self.address}"}
        if self.admission.person is not None:
            keys_.add(f"link:{self.token_hash}")
        if person.login:
            keys_.add(f"login:{person.login}")
        return frozenset(keys_)

    def _roles(self, person: Person, row: Room) -> tuple[bool, bool]:
        """(organizer, host): hosts are the organizer and the invitees the event names,
        known by their personal link or their account; guests and callers are not."""
        organizer = bool(person.login) and person.login == row.owner
        if organizer or self.admission.person is not None:
            return organizer, True
        if not person.login:
            return False, False
        accounts = self.app[keys.ACCOUNTS]
        account = accounts.get(person.login)
        if account is None or account.disabled:
            return False, False
        return False, is_invited(accounts, account, row, schedule.invited_addresses(row.event))

    async def dismiss(self, reason: str) -> None:
        """This knock is over without entering: refused, full, the room closing, a restart."""
        self.knock = None
        if reason == RESTART:
            await self.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"restart")
        else:
            await self.refuse(reason)

    async def enter(self, pid: str, person: Person, marks: frozenset[str]) -> None:
        room = self.room
        assert room is not None
        if self.ws.closed:
            return
        if self.knock is not None:
            room.knocks.pop(self.knock.id, None)
            self.knock = None
            await room.broadcast({"type": "knock-resolved", "id": pid})
        organizer, host = self._roles(person, room.row)
        p = Participant(
            pid,
            person,
            self.ws,
            announced=self.settings.ice_announced_address,
            organizer=organizer,
            host=host,
            marks=marks,
        )
        self.participant = p
        await self.send(
            {
                "type": "joined",
                "you": {"id": pid, "name": person.name},
                "host": host,
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
        allowed, bucket, tell = self.limiter.allow(kind, asyncio.get_running_loop().time())
        if not allowed:
            if tell:
                wait = round(self.limiter.retry_after(bucket), 1)
                await self.send(
                    {"type": "error", "reason": "rate-limited", "what": bucket, "retryAfter": wait}
                )
            return
        if kind == "join":
            self.asked = True
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
        else:
            handler = inside.HANDLERS.get(str(kind))
            if handler is not None:
                await handler(self, p, room, msg)

    async def cleanup(self) -> None:
        room = self.room
        if room is None:
            return
        if self.knock is not None and room.knocks.get(self.knock.id) is self.knock:
            del room.knocks[self.knock.id]
            await room.broadcast({"type": "knock-resolved", "id": self.knock.id})
        if self.participant is not None:
            await room.remove(self.participant)


async def _join_deadline(session: Session, seconds: float) -> None:
    await asyncio.sleep(seconds)
    if not session.asked:
        await session.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"no join")


async def room_socket(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    token_hash = tokens.hash_token(token)
    admission = request.app[keys.LINKS].lookup(token_hash)
    if admission is None or not valid_token(token):
        raise web.HTTPNotFound()
    limits = request.app[keys.SETTINGS].limits
    # Only the front reaches a worker (a Unix socket in a private folder): its word is
    # the client's address, found by the front's own trusted-proxy rules.
    address = request.headers.get(CLIENT_HEADER, "") or "unknown"
    sockets = request.app[keys.ROOMS].sockets
    if not sockets.acquire(address, limits.sockets_per_address):
        log.info("too many signalling sockets from %s", address)
        raise web.HTTPTooManyRequests(text="too many connections from this address")
    try:
        return await _serve(request, admission, token_hash, address)
    finally:
        sockets.release(address)


async def _serve(
    request: web.Request, admission: Admission, token_hash: str, address: str
) -> web.StreamResponse:
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE)
    await ws.prepare(request)
    session = Session(request.app, admission, ws, token_hash=token_hash, address=address)
    deadline = asyncio.create_task(
        _join_deadline(session, request.app[keys.SETTINGS].limits.join_timeout)
    )
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
        deadline.cancel()
        await session.cleanup()
    return ws
