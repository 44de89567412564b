"""The front's half of signalling: `/ws/{token}` handed to the room's media worker.

The page keeps one public URL; the front finds (or places) the room's worker
and relays the messages both ways (a few per second: see docs/signaling.md for
what relaying costs). Two things happen here and not in the worker: the
per-address socket cap (the front sees every socket of the node) and password
sign-ins, checked by the CalDAV server as everywhere else and handed over as
a short-lived signed word (`signedIn`), so a worker never sees a password.
When the worker goes away the page's socket closes with "restart" and the
page rejoins; its next socket lands wherever the room is placed then.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from urllib.parse import quote

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from conference_backend import keys
from conference_backend.nodes import ROUTER, Router
from conference_backend.passwords import REFUSALS, check_password
from conference_backend.workers import WorkerPool
from visio_core import phone_wire as wire
from visio_core import tokens
from visio_core.addresses import AddressSockets, client_address
from visio_core.identity import signed_in_token
from visio_core.placement import CLIENT_HEADER
from visio_core.tokens import valid_token

log = logging.getLogger("visio.proxy")
MAX_MESSAGE = 256 * 1024
WORKERS = web.AppKey("workers", WorkerPool)
SOCKETS = web.AppKey("sockets", AddressSockets)


async def room_socket(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    admission = request.app[keys.LINKS].lookup(tokens.hash_token(token))
    if admission is None or not valid_token(token):
        raise web.HTTPNotFound()
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=MAX_MESSAGE)
    if not ws.can_prepare(request).ok:  # before reaching a worker: nothing to hold open
        raise web.HTTPBadRequest(text="this address is for the meeting page's WebSocket")
    room_id = admission.room.room_id
    router = request.app[ROUTER]
    limits = request.app[keys.SETTINGS].limits
    address = client_address(request, limits.trusted_proxies)
    routed = router.routed(request, room_id)
    if routed:  # the node the page reached counted its socket and knows its address
        address = request.headers.get(CLIENT_HEADER, address)[:64]
    sockets = request.app[SOCKETS]
    if not routed and not sockets.acquire(address, limits.sockets_per_address):
        log.info("too many signalling sockets from %s", address)
        raise web.HTTPTooManyRequests(text="too many connections from this address")
    try:
        upstream = await _upstream(router, room_id, routed, token, address)
        await ws.prepare(request)
        await _relay(request.app, ws, upstream, room_id, address)
        return ws
    finally:
        if not routed:
            sockets.release(address)


async def _upstream(
    router: Router, room_id: str, routed: bool, token: str, address: str
) -> aiohttp.ClientWebSocketResponse:
    """The socket to the room's worker, here or on its node. A node found gone on the
    way is forgotten and the room placed again at once, in this same request: the
    page would otherwise wait for its next retry (seconds)."""
    for attempt in (1, 2):
        target = await router.target(room_id, routed)
        if target is None:
            raise web.HTTPServiceUnavailable(text="the meeting server is starting or stopping")
        try:
            return await target.session.ws_connect(
                f"{target.base}/ws/{token}",
                headers={CLIENT_HEADER: address, **target.headers},
                max_msg_size=MAX_MESSAGE,
                autoping=True,
            )
        except aiohttp.WSServerHandshakeError as e:
            if e.status == 429:
                raise web.HTTPTooManyRequests(text="too many connections") from e
            if e.status == 404:
                raise web.HTTPNotFound() from e
            raise web.HTTPServiceUnavailable() from e
        except (aiohttp.ClientError, OSError, KeyError) as e:
            # The worker (or node) died between placement and now.
            log.info("room %s: %s unreachable (%s)", room_id, target.label, e)
            if attempt == 1 and await router.unreachable(target):
                continue
            raise web.HTTPServiceUnavailable(text="the meeting server is restarting") from e
    raise web.HTTPServiceUnavailable(text="the meeting server is restarting")


async def _relay(
    app: web.Application,
    ws: web.WebSocketResponse,
    upstream: aiohttp.ClientWebSocketResponse,
    room_id: str,
    address: str,
) -> None:
    async def down() -> None:
        code, reason = WSCloseCode.SERVICE_RESTART, b"restart"  # the worker went away
        while True:
            msg = await upstream.receive()
            if msg.type == WSMsgType.TEXT:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.send_str(msg.data)
            elif msg.type == WSMsgType.CLOSE:
                code = msg.data or WSCloseCode.OK
                reason = (msg.extra or "").encode()
                break
            elif msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                break
        await ws.close(code=code, message=reason)

    async def up() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            text = await _outgoing(app, ws, msg.data, room_id, address)
            if text is not None and not upstream.closed:
                await upstream.send_str(text)

    downward = asyncio.create_task(down())
    upward = asyncio.create_task(up())
    try:
        await asyncio.wait({downward, upward}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        upward.cancel()
        if not upstream.closed:
            await upstream.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(downward, 5)
        downward.cancel()
        await asyncio.gather(upward, downward, return_exceptions=True)


async def _outgoing(
    app: web.Application, ws: web.WebSocketResponse, text: str, room_id: str, address: str
) -> str | None:
    """The page's message as the worker gets it: a password join becomes `signedIn`."""
    if '"login"' not in text:
        return text
    try:
        msg: Any = json.loads(text)
    except ValueError:
        return text
    if not isinstance(msg, dict) or msg.get("type") != "join" or not msg.get("login"):
        return text
    login = str(msg.pop("login", ""))[:64]
    password = str(msg.pop("password", ""))[:1024]
    checked = await check_password(app, login, password, address, "room")
    if checked.account is None:
        reason = checked.refusal if checked.refusal in REFUSALS else "unavailable"
        extra = {"retryAfter": checked.retry_after} if checked.retry_after else {}
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json({"type": "error", "reason": reason, **extra})
        return None
    msg["signedIn"] = signed_in_token(app[keys.SERVER_KEY], room_id, checked.account.login)
    return json.dumps(msg)


async def recording_control(request: web.Request) -> web.StreamResponse:
    """`POST /recordings/control/{token}`: decided by the worker that holds the room."""
    token = request.match_info["token"]
    admission = request.app[keys.LINKS].lookup(tokens.hash_token(token))
    if admission is None or not valid_token(token):
        raise web.HTTPNotFound()
    router = request.app[ROUTER]
    room_id = admission.room.room_id
    if router.routed(request, room_id):
        target = await router.target(room_id, routed=True)
    else:
        target = await router.find(room_id)
    if target is None:
        raise web.HTTPForbidden()  # not live: nobody is inside to start anything
    body = await request.content.read(64 * 1024)
    try:
        async with target.session.post(
            f"{target.base}/recordings/control/{token}",
            data=body,
            headers={"Content-Type": "application/json", **target.headers},
        ) as resp:
            return web.Response(
                status=resp.status, body=await resp.read(), content_type=resp.content_type
            )
    except (aiohttp.ClientError, OSError, KeyError) as e:
        raise web.HTTPServiceUnavailable() from e


async def phone_socket(request: web.Request) -> web.StreamResponse:
    """`/internal/phone/{room_id}` from another node's SIP gateway: handed to our worker.

    Only with a route word: the phone interface is between our own processes and nodes."""
    room_id = request.match_info["room_id"]
    router = request.app[ROUTER]
    if not router.routed(request, room_id):
        raise web.HTTPForbidden()
    ws = web.WebSocketResponse(heartbeat=wire.HEARTBEAT, max_msg_size=wire.MAX_MESSAGE)
    if not ws.can_prepare(request).ok:
        raise web.HTTPBadRequest()
    target = await router.target(room_id, routed=True)
    if target is None:
        raise web.HTTPServiceUnavailable()
    try:
        upstream = await target.session.ws_connect(
            target.base + wire.PATH.format(room_id=quote(room_id, safe="")),
            heartbeat=wire.HEARTBEAT,
            max_msg_size=wire.MAX_MESSAGE,
        )
    except (aiohttp.ClientError, OSError, KeyError) as e:
        raise web.HTTPServiceUnavailable() from e
    await ws.prepare(request)
    await _pipe(ws, upstream)
    return ws


async def _pipe(ws: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse) -> None:
    """Text and binary frames both ways, unchanged; either side closing closes the other."""

    async def down() -> None:
        async for msg in upstream:
            if msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
        await ws.close(code=upstream.close_code or WSCloseCode.SERVICE_RESTART)

    async def up() -> None:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                await upstream.send_str(msg.data)
            elif msg.type == WSMsgType.BINARY:
                await upstream.send_bytes(msg.data)
        await upstream.close()

    tasks = {asyncio.create_task(down()), asyncio.create_task(up())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if not upstream.closed:
            await upstream.close()
        if not ws.closed:
            await ws.close(code=WSCloseCode.SERVICE_RESTART)
