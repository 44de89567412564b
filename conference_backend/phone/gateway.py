"""The SIP gateway: UDP and TCP listeners on VISIO_SIP_LISTEN, a minimal UAS, one Call per dialog.

Accepted: INVITE (a new call, or a re-INVITE answered with the same SDP),
ACK, BYE, CANCEL, INFO (keys, as application/dtmf-relay or application/dtmf)
and OPTIONS. Requests come from an address in VISIO_SIP_ALLOW, or carry digest
credentials (VISIO_SIP_USER and the password in VISIO_SIP_PASSWORD_FILE): the
first request is answered 401 with a fresh nonce. In-dialog requests are
accepted from the address that opened the dialog. Our BYE goes back where the
INVITE came from (over the same TCP connection), through its Record-Route set.

The gateway runs in the front process; the rooms live in media workers, and a
call that reaches a room is handed to the room's worker (remote.py `Rooms`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from conference_backend.phone import digest, sdp, sip
from conference_backend.phone.call import Call, PhoneContext
from conference_backend.phone.leg import Leg
from conference_backend.phone.prompts import Prompts
from conference_backend.phone.ratelimit import RateLimiter
from conference_backend.phone.remote import Rooms
from visio_core.registry import Registry
from visio_core.settings import Settings, parse_listen

log = logging.getLogger("visio.phone")
REALM = "visio"
ALLOW = "INVITE, ACK, BYE, CANCEL, INFO, OPTIONS"
MAX_CALLS = 200
MAX_CONNECTIONS = 256
ACK_TIMEOUT = 32.0  # 64 * T1
WILDCARD = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - recognised, not bound here


@dataclass
class Peer:
    transport: str  # "UDP" | "TCP"
    addr: tuple[str, int]
    send: Callable[[bytes], None]


@dataclass
class Dialog:
    call_id: str
    peer: Peer
    invite: sip.Message
    answer: sip.Message
    our_from: str  # their To with our tag
    their_to: str  # their From
    target: str
    route: list[str]
    call: Call
    local: str
    acked: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None
    cseq: int = 0
    remote_ended: bool = False


def allow_list(value: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v.strip(), strict=False) for v in value.split(",") if v.strip()]


def info_key(msg: sip.Message) -> str | None:
    """The key of a SIP INFO (application/dtmf-relay "Signal=5", or application/dtmf "5")."""
    kind = (msg.get("content-type") or "").split(";")[0].strip().lower()
    text = msg.body[:256].decode("ascii", errors="replace")
    value = ""
    if kind == "application/dtmf-relay":
        for line in text.splitlines():
            name, _, val = line.partition("=")
            if name.strip().lower() == "signal":
                value = val.strip()
    elif kind == "application/dtmf":
        value = text.strip()
    if value == "10":
        value = "*"
    elif value == "11":
        value = "#"
    return value if len(value) == 1 and value in "0123456789*#" else None


class _Udp(asyncio.DatagramProtocol):
    def __init__(self, gateway: PhoneGateway) -> None:
        self.gateway = gateway
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        transport = self.transport
        if transport is None:
            return
        peer = Peer("UDP", (addr[0], addr[1]), lambda out: transport.sendto(out, addr))
        self.gateway.received(data, peer)


class PhoneGateway:
    def __init__(self, settings: Settings, registry: Registry, rooms: Rooms) -> None:
        self.settings = settings
        self.host, self.port = parse_listen(settings.sip_listen, "VISIO_SIP_LISTEN")
        self.allow = allow_list(settings.sip_allow)
        self.user = settings.sip_user
        self.password = ""
        if settings.sip_password_file:
            self.password = Path(settings.sip_password_file).read_text(encoding="utf-8").strip()
        self.nonce_key = secrets.token_bytes(32)
        prompts = Prompts(settings.data_dir / "prompts", settings.language)
        self.ctx = PhoneContext(settings, registry, rooms, prompts, RateLimiter())
        self.dialogs: dict[str, Dialog] = {}
        self._pending: set[str] = set()
        self._waiting: dict[tuple[str, int], asyncio.Event] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._udp: asyncio.DatagramTransport | None = None
        self._tcp: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()

    # lifetime -------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Udp(self), local_addr=(self.host, self.port)
        )
        self._udp = transport
        self._tcp = await asyncio.start_server(self._connection, self.host, self.port)
        self._spawn(self.ctx.prompts.prepare())
        log.info("SIP gateway listening on %s:%d (UDP, TCP)", self.host, self.port)

    async def stop(self) -> None:
        if self._udp is not None:
            self._udp.close()
        if self._tcp is not None:
            self._tcp.close()
        for dialog in list(self.dialogs.values()):
            self._send_bye(dialog)
            if dialog.task is not None:
                dialog.task.cancel()
        tasks = [d.task for d in self.dialogs.values() if d.task is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        self.dialogs.clear()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in list(self._connections):
            writer.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._connections) >= MAX_CONNECTIONS:
            writer.close()
            return
        self._connections.add(writer)
        name = writer.get_extra_info("peername")
        peer = Peer("TCP", (name[0], name[1]), writer.write)
        buffer = bytearray()
        try:
            while chunk := await reader.read(4096):
                buffer += chunk
                while (data := sip.frame(buffer)) is not None:
                    self.received(data, peer)
        except (sip.SipError, ConnectionError) as e:
            log.info("SIP over TCP from %s dropped: %s", peer.addr[0], e)
        finally:
            self._connections.discard(writer)
            writer.close()

    # messages -------------------------------------------------------------------
    def received(self, data: bytes, peer: Peer) -> None:
        if not data.strip():
            return  # keep-alive
        try:
            msg = sip.parse(data)
        except sip.SipError as e:
            log.debug("bad SIP message from %s: %s", peer.addr[0], e)
            return
        if msg.is_request:
            self._request(msg, peer)
        else:
            number, method = msg.cseq()
            event = self._waiting.get((msg.call_id, number))
            if event is not None and method == "BYE" and msg.status >= 200:
                event.set()

    def _reply(
        self,
        msg: sip.Message,
        status: int,
        peer: Peer,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        to_tag: str | None = None,
    ) -> None:
        peer.send(sip.response(msg, status, to_tag, headers, body).to_bytes())

    def _request(self, msg: sip.Message, peer: Peer) -> None:
        dialog = self.dialogs.get(msg.call_id)
        if msg.method == "ACK":
            if dialog is not None:
                dialog.acked.set()
            return
        if not self._authorised(msg, peer, dialog):
            return
        if msg.method == "INVITE":
            if dialog is None and msg.call_id not in self._pending:
                self._invite(msg, peer)
            elif dialog is not None and sip.param(msg.get("to") or "", "tag") is None:
                peer.send(dialog.answer.to_bytes())  # the INVITE again: our 200 got lost
            elif dialog is not None:  # re-INVITE (hold, refresh): the same answer
                self._reply(
                    msg,
                    200,
                    peer,
                    headers=[("content-type", "application/sdp"), ("allow", ALLOW)],
                    body=dialog.answer.body,
                )
        elif msg.method == "BYE":
            self._reply(msg, 200 if dialog is not None else 481, peer)
            if dialog is not None:
                dialog.remote_ended = True
                self._end(dialog)
        elif msg.method == "CANCEL":
            self._reply(msg, 200 if dialog is not None else 481, peer)
        elif msg.method == "INFO":
            self._reply(msg, 200 if dialog is not None else 481, peer)
            key = info_key(msg) if dialog is not None else None
            if dialog is not None and key is not None:
                dialog.call.key(key)
        elif msg.method == "OPTIONS":
            self._reply(msg, 200, peer, headers=[("allow", ALLOW), ("accept", "application/sdp")])
        else:
            self._reply(msg, 405, peer, headers=[("allow", ALLOW)])

    def _authorised(self, msg: sip.Message, peer: Peer, dialog: Dialog | None) -> bool:
        ip = peer.addr[0]
        if dialog is not None and dialog.peer.addr[0] == ip:
            return True
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        if any(address in net for net in self.allow):
            return True
        if not (self.user and self.password):
            log.info("SIP %s from %s refused: not in VISIO_SIP_ALLOW", msg.method, ip)
            self._reply(msg, 403, peer)
            return False
        header = msg.get("authorization") or ""
        if header and digest.verify(
            header, msg.method, self.user, self.password, REALM, self.nonce_key, time.time()
        ):
            return True
        if header:
            log.info("SIP %s from %s: wrong digest credentials", msg.method, ip)
        nonce = digest.new_nonce(self.nonce_key, time.time())
        self._reply(
            msg,
            401,
            peer,
            to_tag=sip.new_tag(),
            headers=[("www-authenticate", digest.challenge(REALM, nonce))],
        )
        return False

    # calls ------------------------------------------------------------------------
    def _invite(self, msg: sip.Message, peer: Peer) -> None:
        if len(self.dialogs) + len(self._pending) >= MAX_CALLS:
            self._reply(msg, 503, peer)
            return
        try:
            neg = sdp.negotiate(msg.body.decode("utf-8", errors="replace"))
        except sdp.SdpError as e:
            log.info("INVITE from %s refused: %s", peer.addr[0], e)
            self._reply(msg, 488, peer)
            return
        self._reply(msg, 100, peer)
        self._pending.add(msg.call_id)
        self._spawn(self._answer(msg, peer, neg))

    def _media_address(self, peer: Peer) -> str:
        if self.host not in WILDCARD:
            return self.host
        family = socket.AF_INET6 if ":" in peer.addr[0] else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect(peer.addr)  # no packet sent: only asks which address would be used
            return str(s.getsockname()[0])

    async def _answer(self, msg: sip.Message, peer: Peer, neg: sdp.Negotiated) -> None:
        try:
            local = self._media_address(peer)
            leg = Leg(neg, {neg.address, peer.addr[0]})
            port = await leg.open(self.host)
            tag = sip.new_tag()
            host = f"[{local}]" if ":" in local else local
            transport = peer.transport.lower()
            contact = f"<sip:visio@{host}:{self.port};transport={transport}>"
            answer = sip.response(
                msg,
                200,
                to_tag=tag,
                headers=[
                    ("contact", contact),
                    ("allow", ALLOW),
                    ("content-type", "application/sdp"),
                ],
                body=sdp.answer(neg, local, port).encode(),
            )
            caller = sip.user_of(msg.get("from") or "")
            call = Call(self.ctx, leg, caller, peer.addr[0])
            dialog = Dialog(
                call_id=msg.call_id,
                peer=peer,
                invite=msg,
                answer=answer,
                our_from=answer.get("to") or "",
                their_to=msg.get("from") or "",
                target=sip.uri_of(msg.get("contact") or "") or msg.uri,
                route=msg.get_all("record-route"),
                call=call,
                local=local,
            )
            self.dialogs[msg.call_id] = dialog
        finally:
            self._pending.discard(msg.call_id)
        peer.send(answer.to_bytes())
        dialog.task = asyncio.create_task(call.run(), name=f"phone call {msg.call_id[:12]}")
        dialog.task.add_done_callback(lambda _: self._call_done(dialog))
        if peer.transport == "UDP":
            self._spawn(self._retransmit(dialog))

    async def _retransmit(self, dialog: Dialog) -> None:
        interval, waited = 0.5, 0.0
        while not dialog.acked.is_set() and waited < ACK_TIMEOUT:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(dialog.acked.wait(), interval)
            if dialog.acked.is_set() or self.dialogs.get(dialog.call_id) is not dialog:
                return
            waited += interval
            interval = min(interval * 2, 4.0)
            dialog.peer.send(dialog.answer.to_bytes())
        if not dialog.acked.is_set():
            log.info("no ACK for call %s: hanging up", dialog.call_id[:12])
            self._end(dialog)

    def _end(self, dialog: Dialog) -> None:
        if dialog.task is not None and not dialog.task.done():
            dialog.task.cancel()

    def _call_done(self, dialog: Dialog) -> None:
        if self.dialogs.get(dialog.call_id) is dialog:
            del self.dialogs[dialog.call_id]
        if not dialog.remote_ended:
            self._spawn(self._hang_up(dialog))

    def _send_bye(self, dialog: Dialog) -> tuple[str, int]:
        dialog.cseq += 1
        host = f"[{dialog.local}]" if ":" in dialog.local else dialog.local
        branch = sip.new_branch()
        headers = [
            ("via", f"SIP/2.0/{dialog.peer.transport} {host}:{self.port};branch={branch};rport"),
            ("max-forwards", "70"),
            ("from", dialog.our_from),
            ("to", dialog.their_to),
            ("call-id", dialog.call_id),
            ("cseq", f"{dialog.cseq} BYE"),
            *(("route", r) for r in dialog.route),
        ]
        bye = sip.Message(method="BYE", uri=dialog.target, headers=headers)
        with contextlib.suppress(Exception):
            dialog.peer.send(bye.to_bytes())
        return dialog.call_id, dialog.cseq

    async def _hang_up(self, dialog: Dialog) -> None:
        # No BYE before the caller's ACK (RFC 3261 15), unless it never comes.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dialog.acked.wait(), ACK_TIMEOUT)
        data = self._send_bye(dialog)
        answered = self._waiting[data] = asyncio.Event()
        try:
            for interval in (0.5, 1.0, 2.0):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(answered.wait(), interval)
                if answered.is_set() or dialog.peer.transport == "TCP":
                    return
                dialog.cseq -= 1  # the same request again
                self._send_bye(dialog)
        finally:
            self._waiting.pop(data, None)
