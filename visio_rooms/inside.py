"""What a participant inside a room may say (docs/signaling.md, "Inside").

Session.handle (signaling.py) has already counted the message against its
token bucket and checked that the sender is inside; each handler here then
decides who may do what. Hosts (`Participant.host`: the organizer and the
invitees) may remove people and lower hands; the lobby is theirs while one of
them is inside, and everyone's otherwise, so guests never wait forever in a
meeting no host came to.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from visio_rooms import keys, subscriptions
from visio_rooms.lobby import removal_until
from visio_rooms.participant import Member, Participant
from visio_rooms.rooms import LiveRoom
from visio_rooms.sfu.selection import parse_view

if TYPE_CHECKING:
    from visio_rooms.signaling import Session

log = logging.getLogger("visio.signaling")

Handler = Callable[["Session", Participant, LiveRoom, dict[str, Any]], Awaitable[None]]


async def not_allowed(session: Session, what: str) -> None:
    await session.send({"type": "error", "reason": "not-allowed", "what": what})


async def updated(room: LiveRoom, member: Member) -> None:
    await room.broadcast({"type": "participant-updated", "participant": member.public()})


async def media(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    p.audio = bool(msg.get("audio", p.audio))
    p.video = bool(msg.get("video", p.video))
    await updated(room, p)


async def screen(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    await room.set_screen(p, bool(msg.get("on")))


async def chat(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    text = msg.get("text")
    text = text.strip() if isinstance(text, str) else ""
    longest = session.limits.chat_max_length
    if len(text) > longest:
        await session.send({"type": "error", "reason": "chat-too-long", "max": longest})
    elif text:
        line = {
            "type": "chat",
            "from": p.id,
            "name": p.name,
            "text": text,
            "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        room.chat.append(line)
        await room.broadcast(line)


async def hand(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    """One's own hand up or down; a host may also lower anyone else's (never raise it)."""
    up = msg.get("up") is True
    target_id = msg.get("id")
    target: Member | None = p
    if target_id is not None and str(target_id) != p.id:
        if up or not p.host:
            await not_allowed(session, "hand")
            return
        target = room.participants.get(str(target_id))
    if target is None or target.hand == up:
        return  # gone already, or nothing changes: nobody needs telling
    target.hand = up
    await updated(room, target)


def may_decide_lobby(p: Participant, room: LiveRoom) -> bool:
    return p.host or not any(q.host for q in room.participants.values())


async def lobby(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    """`admit` or `refuse` someone knocking."""
    kind = msg.get("type")
    if not may_decide_lobby(p, room):
        await not_allowed(session, "lobby")
        return
    knock = room.knocks.pop(str(msg.get("id")), None)
    if knock is None:
        return
    await room.broadcast({"type": "knock-resolved", "id": knock.id})
    if kind == "admit" and len(room.participants) < session.settings.room_capacity:
        room.removals.pardon(knock.marks)  # let in again: the removal is lifted
        await knock.admit()
    else:
        if kind == "refuse":
            now = asyncio.get_running_loop().time()
            until = now + session.limits.refusal_cooldown
            session.app[keys.ROOMS].cooldowns.start(room.id, knock.cooldown, until, now)
        await knock.dismiss("refused" if kind == "refuse" else "full")


async def remove(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    """The organizer's (or a host's) "retirer": anyone but the organizer and oneself."""
    target = room.participants.get(str(msg.get("id")))
    if target is None and p.host:
        return  # gone already (another host was quicker, or they left)
    if not p.host or target is None or target.id == p.id or target.organizer:
        await not_allowed(session, "remove")
        return
    settings = session.settings
    until = removal_until(
        room.row.event,
        dt.timedelta(minutes=settings.early_join_minutes),
        dt.timedelta(minutes=settings.room_grace_minutes),
    )
    log.info("room %s: %s removed %s", room.id, p.id, target.id)
    await room.expel(target, until)


async def view(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    """What the page shows now: it receives that only (subscriptions.py)."""
    others = [q for q in room.participants if q != p.id]
    subscriptions.set_view(p, parse_view(msg, others), asyncio.get_running_loop().time())
    room.reroute_one(p.id)


async def leave(session: Session, p: Participant, room: LiveRoom, msg: dict[str, Any]) -> None:
    await session.ws.close()


HANDLERS: dict[str, Handler] = {
    "media": media,
    "screen": screen,
    "chat": chat,
    "hand": hand,
    "admit": lobby,
    "refuse": lobby,
    "remove": remove,
    "leave": leave,
    "view": view,
}
