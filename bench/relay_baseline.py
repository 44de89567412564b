"""Baseline for bench/sfu.py: the same room through stock aiortc `MediaRelay`.

A deliberately small server speaking the subset of docs/signaling.md the
benchmark uses (join, publish, offer/answer, slots). Stock aiortc decodes every
incoming track and `MediaRelay` hands the decoded frames to each subscriber's
sender, which encodes them again: one decode per publisher, one encode per
subscriber. This is what our SFU is compared with.

    .venv/bin/python bench/relay_baseline.py PORT
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from visio_rooms import rtc
from visio_rooms.sfu import passthrough


@dataclass
class Member:
    id: str
    ws: web.WebSocketResponse
    pc: RTCPeerConnection | None = None  # subscribe connection
    tracks: list[MediaStreamTrack] = field(default_factory=list)  # published
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    answer: asyncio.Future[str] | None = None


RELAY = web.AppKey("relay", MediaRelay)
MEMBERS = web.AppKey("members", dict)
TASKS = web.AppKey("tasks", set)


async def subscribe(member: Member, tracks: list[tuple[str, MediaStreamTrack]], relay: MediaRelay):
    async with member.lock:
        if member.pc is None:
            member.pc = rtc.new_peer_connection()
        pc = member.pc
        slots = []
        for owner, track in tracks:
            sender = pc.addTrack(relay.subscribe(track, buffered=False))
            t = next(t for t in pc.getTransceivers() if t.sender is sender)
            rtc.prefer_forwardable_codecs(t)
            slots.append((t, owner, track.kind))
        await pc.setLocalDescription(await pc.createOffer())
        member.answer = asyncio.get_running_loop().create_future()
        await member.ws.send_json({"type": "offer", "sdp": pc.localDescription.sdp})
        sdp = await member.answer
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        info = [
            {
                "mid": t.mid,
                "role": "camera" if kind == "video" else "audio",
                "kind": kind,
                "participant": owner,
                "name": owner,
                "source": kind,
            }
            for t, owner, kind in slots
        ]
        await member.ws.send_json({"type": "slots", "slots": info})


def spawn(app: web.Application, coro: Any) -> None:
    task = asyncio.create_task(coro)
    app[TASKS].add(task)
    task.add_done_callback(app[TASKS].discard)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def socket(request: web.Request) -> web.StreamResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    members: dict[str, Member] = request.app[MEMBERS]
    relay = request.app[RELAY]
    me = Member(str(len(members) + 1), ws)
    pub_pc = None
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        msg = json.loads(message.data)
        if msg["type"] == "join":
            members[me.id] = me
            await ws.send_json(
                {
                    "type": "joined",
                    "you": {"id": me.id, "name": me.id},
                    "iceServers": [],
                    "participants": [],
                }
            )
            existing = [(m.id, t) for m in members.values() if m is not me for t in m.tracks]
            if existing:
                spawn(request.app, subscribe(me, existing, relay))
        elif msg["type"] == "publish":
            pub_pc = rtc.new_peer_connection()
            new: list[MediaStreamTrack] = []
            pub_pc.on("track", new.append)
            await pub_pc.setRemoteDescription(RTCSessionDescription(sdp=msg["sdp"], type="offer"))
            await pub_pc.setLocalDescription(await pub_pc.createAnswer())
            await ws.send_json({"type": "publish-answer", "sdp": pub_pc.localDescription.sdp})
            me.tracks.extend(new)
            for m in members.values():
                if m is not me:
                    spawn(request.app, subscribe(m, [(me.id, t) for t in new], relay))
        elif msg["type"] == "answer" and me.answer is not None:
            me.answer.set_result(msg["sdp"])
    members.pop(me.id, None)
    for pc in (pub_pc, me.pc):
        if pc is not None:
            await pc.close()
    return ws


def main() -> None:
    passthrough.install()  # only for the loopback ICE fallback: receivers here decode
    app = web.Application()
    app[RELAY] = MediaRelay()
    app[MEMBERS] = {}
    app[TASKS] = set()
    app.router.add_get("/ws/{token}", socket)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)


if __name__ == "__main__":
    main()
