"""One person in a room: their signalling socket and two peer connections.

The *publish* connection carries what the browser sends (it makes the offers);
the *subscribe* connection carries what the backend forwards to it (the backend
makes the offers). Keeping the two directions apart means neither side ever
has to resolve an offer collision. Outgoing media go through *slots*: a Forwarder
plus its sender, re-pointed at another publication instead of renegotiating
whenever possible.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from visio_core.identity import Person
from visio_rooms import rtc
from visio_rooms.sfu import passthrough
from visio_rooms.sfu.bandwidth import Bandwidth
from visio_rooms.sfu.forwarding import Forwarder, Publication
from visio_rooms.sfu.selection import Choice, View

log = logging.getLogger("visio.room")
ANSWER_TIMEOUT = 15.0


@dataclass
class Slot:
    forwarder: Forwarder
    role: str  # "main" | "camera" | "audio"
    mid: str | None = None
    sender: Any = None  # the RTCRtpSender: its receiver's REMB estimate is read there

    @property
    def publication(self) -> Publication | None:
        return self.forwarder.publication


@dataclass
class Participant:
    id: str
    person: Person
    ws: web.WebSocketResponse
    announced: str = ""
    audio: bool = True
    video: bool = True
    organizer: bool = False  # the meeting's organizer: nobody can remove them
    # May remove others, lower their hands and always decide for the lobby: the
    # organizer and the invitees they named.
    host: bool = False
    hand: bool = False  # raised hand (inside.py)
    marks: frozenset[str] = frozenset()  # how a removal recognises them again (lobby.py)
    publications: dict[str, Publication] = field(default_factory=dict)
    slots: list[Slot] = field(default_factory=list)
    last_main: str | None = None  # whom this person's main window showed last
    view: View | None = None  # what the page shows (None: an older page, receives everyone)
    choice: Choice | None = None  # what it receives for that view (subscriptions.py)
    bandwidth: Bandwidth = field(default_factory=Bandwidth)
    joined_at: float = field(default_factory=time.monotonic)
    pub_pc: RTCPeerConnection | None = None
    sub_pc: RTCPeerConnection | None = None
    _answer: asyncio.Future[str] | None = None
    _negotiation: asyncio.Lock = field(default_factory=asyncio.Lock)
    _leaving: bool = False
    _restart: asyncio.Task[None] | None = None  # telling the page to reconnect

    @property
    def name(self) -> str:
        return self.person.name

    def public(self) -> dict[str, Any]:
        out = {
            "id": self.id,
            "name": self.name,
            "audio": self.audio,
            "video": self.video,
            "hand": self.hand,
        }
        if self.organizer:
            out["organizer"] = True
        if self.host:
            out["host"] = True
        return out

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws.closed:
            return
        try:
            await self.ws.send_json(message)
        except (ConnectionError, RuntimeError):
            log.debug("cannot send to %s: socket closing", self.id)

    def _peer_connection(self, which: str) -> RTCPeerConnection:
        pc = rtc.new_peer_connection()
        born = time.monotonic()

        @pc.on("connectionstatechange")
        def changed() -> None:
            if pc.connectionState == "connected":
                # How long ICE and DTLS took: what an operator looks at first when
                # someone's picture never comes.
                log.info("%s: %s connection up in %.1f s", self.id, which, time.monotonic() - born)
            # Media lost while still in the room (ICE consent ran out, DTLS failed or
            # was closed by the other side; aiortc reports the first as "failed" or
            # "closed" depending on which transport notices first): left alone, the
            # page would sit there sending and receiving nothing, and those who watch
            # it would get nothing either. With its socket closed with "restart" the
            # page rebuilds its connections and joins again (resume word), as after a
            # worker restart; leaving, it drops out of the others' views.
            state = pc.connectionState
            if state in ("failed", "closed") and not self._leaving and not self.ws.closed:
                log.info(
                    "%s: %s connection %s; the page is told to reconnect", self.id, which, state
                )
                self._leaving = True
                self._restart = asyncio.get_running_loop().create_task(self._reconnect())

        return pc

    async def _reconnect(self) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await self.ws.close(code=WSCloseCode.SERVICE_RESTART, message=b"media lost")

    # publishing ---------------------------------------------------------
    async def accept_publish(
        self,
        sdp: str,
        sources: dict[str, str],
        on_publication: Callable[[Publication], None],
        on_level: Callable[[int], None],
    ) -> str:
        """Answer the browser's offer; each new incoming track becomes a Publication."""
        if self.pub_pc is None:
            self.pub_pc = self._peer_connection("publish")
        pc = self.pub_pc

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
            codec = passthrough.forward_encoded(transceiver)
            if codec not in passthrough.FORWARDED_CODECS:
                log.warning("%s publishes %s, which cannot be forwarded", self.id, codec)
                return
            source = sources.get(str(transceiver.mid), track.kind)
            # What the page calls each track, checked against what it is: an audio
            # track is a microphone, a video one a camera (either layer) or a screen.
            allowed = (
                ("microphone",) if track.kind == "audio" else ("camera", "camera-low", "screen")
            )
            if source not in allowed:
                source = allowed[0]
            receiver = transceiver.receiver
            if track.kind == "audio":
                passthrough.observe_audio_level(receiver, on_level)
            pub = Publication(
                self.id, track.kind, source, track, lambda: passthrough.request_keyframe(receiver)
            )
            old = self.publications.get(source)
            if old is not None:
                asyncio.get_running_loop().create_task(old.stop())
            self.publications[source] = pub
            pub.start()
            on_publication(pub)

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return rtc.announce(pc.localDescription.sdp, self.announced)

    # subscribing --------------------------------------------------------
    def answer_received(self, sdp: str) -> None:
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(sdp)

    async def ensure_slots(self, wanted: dict[str, int]) -> bool:
        """Add forwarders until there are `wanted[role]` slots of each role.

        Returns True when new slots were negotiated (their mids are then known).
        """
        async with self._negotiation:
            missing = [
                role
                for role, count in wanted.items()
                for _ in range(count - sum(1 for s in self.slots if s.role == role))
            ]
            if not missing:
                return False
            if self.sub_pc is None:
                self.sub_pc = self._peer_connection("subscribe")
            pc = self.sub_pc
            for role in missing:
                forwarder = Forwarder("audio" if role == "audio" else "video")
                sender = pc.addTrack(forwarder)
                passthrough.forward_sender(sender)
                transceiver = next(t for t in pc.getTransceivers() if t.sender is sender)
                rtc.prefer_forwardable_codecs(transceiver)
                passthrough.on_keyframe_request(sender, forwarder.keyframe_wanted)
                self.slots.append(Slot(forwarder, role, sender=sender))
            await pc.setLocalDescription(await pc.createOffer())
            for slot in self.slots:
                if slot.mid is None:
                    slot.mid = next(
                        str(t.mid) for t in pc.getTransceivers() if t.sender.track is slot.forwarder
                    )
            self._answer = asyncio.get_running_loop().create_future()
            await self.send(
                {"type": "offer", "sdp": rtc.announce(pc.localDescription.sdp, self.announced)}
            )
            sdp = await asyncio.wait_for(self._answer, ANSWER_TIMEOUT)
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
            return True

    def estimate(self) -> float | None:
        """The page's latest REMB estimate (bit/s) for what we send it, if any is recent."""
        found = [
            e
            for s in self.slots
            if s.sender is not None and (e := passthrough.remb_estimate(s.sender))
        ]
        return float(max(found, key=lambda e: e[1])[0]) if found else None

    async def close(self) -> None:
        self._leaving = True  # our own closing below is no lost connection
        for pub in self.publications.values():
            await pub.stop()
        self.publications.clear()
        for slot in self.slots:
            slot.forwarder.stop()
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                await pc.close()
        if self._answer is not None and not self._answer.done():
            self._answer.cancel()


@dataclass
class PhoneParticipant:
    """A caller bridged in by the SIP gateway: no socket, no peer connection.

    Browsers see it like anyone else (participant-joined/left, speaking); its
    voice is an Opus "microphone" Publication the forwarders take as they are;
    what it hears is the gateway's mix, so the room routes nothing to it.
    """

    id: str
    name: str
    audio: bool = True
    video: bool = False
    organizer: bool = False  # a caller never is (they cannot prove who they are)
    host: bool = False
    hand: bool = False  # a caller cannot raise it; a host can still lower it (inside.py)
    marks: frozenset[str] = frozenset()  # "phone:<number>": a removed number knocks again
    publications: dict[str, Publication] = field(default_factory=dict)
    joined_at: float = field(default_factory=time.monotonic)
    on_room_closed: Callable[[str], None] | None = None

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "audio": self.audio,
            "video": False,
            "hand": self.hand,
            "phone": True,
        }

    async def send(self, message: dict[str, Any]) -> None:
        """Signalling is for pages; a caller only hears the room."""

    def room_closed(self, reason: str) -> None:
        if self.on_room_closed is not None:
            self.on_room_closed(reason)

    async def close(self) -> None:
        for pub in self.publications.values():
            await pub.stop()
        self.publications.clear()


Member = Participant | PhoneParticipant
