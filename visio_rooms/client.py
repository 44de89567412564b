"""A small Python client of the signalling protocol (docs/signaling.md).

Used by the tests and by bench/sfu.py; it is also the reference for anyone
writing another client. It joins, publishes aiortc tracks, answers the
server's offers and counts what arrives on each slot (frames and bytes). With
`decode=False` (the default) received media stay encoded: a benchmark then
measures the server, not the client's decoders.

Large meetings (issue 14): a client may publish its camera twice (`camera` and
`camera-low`), say what its page shows with `send_view`, and obeys the
server's `layers` message (dynacast): a published track with a
`set_paused(bool)` method (bench/sfu_clip.EncodedClip) stops sending while its
layer is not wanted; any other keeps sending, as a browser would without
`RTCRtpSender.setParameters`. A client that never calls `send_view` keeps the
old behaviour: everyone, high layer, main window following the speaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from visio_rooms import rtc
from visio_rooms.sfu import passthrough

STATUS = frozenset({"joined", "lobby", "waiting", "closed", "error"})
# The published source that carries each camera layer ("layers" message).
LAYER_SOURCES = {"high": "camera", "low": "camera-low"}
MAIN_WIDTH, TILE_WIDTH = 1000, 200  # CSS px: a main window, a filmstrip thumbnail


class RoomClient:
    def __init__(self, base_url: str, token: str, *, decode: bool = False) -> None:
        self.url = base_url.rstrip("/").replace("http", "ws", 1) + f"/ws/{token}"
        self.decode = decode
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.joined: dict[str, Any] | None = None
        self.slots: list[dict[str, Any]] = []
        self.frames: Counter[str] = Counter()  # mid -> frames received
        self.bytes: Counter[str] = Counter()  # mid -> encoded bytes received (decode=False)
        self.participants: dict[str, dict[str, Any]] = {}  # the others, in room order
        self.speaker: str | None = None
        self.view: dict[str, Any] | None = None  # the last `view` sent
        self.layers: dict[str, bool] = {"high": True, "low": True}  # dynacast, as last told
        self.layer_changes = 0  # `layers` messages received
        self.published: dict[str, MediaStreamTrack] = {}  # source -> track
        self.first_frame_at: float | None = None  # monotonic time of the first remote video frame
        self.join_sent_at: float | None = None
        self.closed_reason: str | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._ice: list[dict[str, object]] = []
        self.pub_pc: RTCPeerConnection | None = None
        self.sub_pc: RTCPeerConnection | None = None
        self._publish_answer: asyncio.Future[str] | None = None

    async def __aenter__(self) -> RoomClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        passthrough.install()
        self._http = aiohttp.ClientSession()
        self._ws = await self._http.ws_connect(self.url, heartbeat=10.0)
        self._reader = asyncio.create_task(self._read())

    @property
    def socket_open(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def send(self, message: dict[str, Any]) -> None:
        assert self._ws is not None, "connect() first"
        await self._ws.send_str(json.dumps(message))

    async def expect(self, *types: str, timeout: float = 20.0) -> dict[str, Any]:
        """The next message of one of `types` (others received meanwhile are dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                msg = await self.inbox.get()
                if msg.get("type") in types:
                    return msg

    async def join(self, timeout: float = 20.0, **identity: str) -> dict[str, Any]:
        """Send `join`; returns the answer: joined, lobby, waiting, closed or error."""
        self.join_sent_at = time.monotonic()
        await self.send({"type": "join", **identity})
        return await self.expect(*STATUS, timeout=timeout)

    async def rejoin(self, timeout: float = 20.0) -> dict[str, Any]:
        """What a page does after its socket closed with "restart" (a backend or a
        media worker went away): a new socket, retried while the server answers 503,
        `join` with the session it was given, and media started over."""
        session = self.joined.get("session") if self.joined else None
        await self.close()
        self.frames.clear()
        self.bytes.clear()
        self.slots, self.published, self._tasks = [], {}, set()
        self.pub_pc = self.sub_pc = None
        self.inbox = asyncio.Queue()
        async with asyncio.timeout(timeout):
            delay = 0.25
            while True:
                try:
                    await self.connect()
                    break
                except aiohttp.WSServerHandshakeError:
                    if self._http is not None:
                        await self._http.close()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 2.0)
            return await self.join(timeout, **({"resume": session} if session else {}))

    async def publish(
        self, tracks: dict[str, MediaStreamTrack], *, pre_encoded: bool = False
    ) -> None:
        """Send `tracks` ({"camera": …, "camera-low": …, "microphone": …}) to the room.

        A track with `keyframe_wanted()` gets the server's keyframe requests.
        `pre_encoded`: the tracks return encoded VP8 frames (av.Packet): send them
        with the backend's lean forwarding sender, so a synthetic publisher costs
        next to nothing.
        """
        if self.pub_pc is None:
            self.pub_pc = rtc.new_peer_connection(rtc.client_ice_servers(self._ice))
        pc = self.pub_pc
        for track in tracks.values():
            transceiver = pc.addTransceiver(track, direction="sendonly")
            rtc.prefer_forwardable_codecs(transceiver)
            if pre_encoded:
                passthrough.forward_sender(transceiver.sender)
            wanted = getattr(track, "keyframe_wanted", None)
            if callable(wanted):
                passthrough.on_keyframe_request(transceiver.sender, wanted)
        self.published.update(tracks)
        self._apply_layers()
        await pc.setLocalDescription(await pc.createOffer())
        sources = {}
        for transceiver, source in zip(pc.getTransceivers()[-len(tracks) :], tracks, strict=True):
            sources[str(transceiver.mid)] = source
        self._publish_answer = asyncio.get_running_loop().create_future()
        await self.send({"type": "publish", "sdp": pc.localDescription.sdp, "sources": sources})
        sdp = await asyncio.wait_for(self._publish_answer, 20.0)
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def send_view(
        self,
        main: str | None,
        tiles: Sequence[str] = (),
        *,
        main_width: int = MAIN_WIDTH,
        tile_width: int = TILE_WIDTH,
        main_source: str = "camera",
    ) -> None:
        """Tell the server what the page shows: `main` (a participant id, or None)
        in the main window and `tiles` as thumbnails; `send_view(None)` is a hidden tab."""
        self.view = {
            "type": "view",
            "main": None
            if main is None
            else {"id": main, "source": main_source, "width": main_width},
            "tiles": [{"id": t, "width": tile_width} for t in tiles],
        }
        await self.send(self.view)

    def slot_counters(self) -> list[dict[str, Any]]:
        """Each slot as the server last described it (mid, role, kind, participant,
        source, layer…) with the frames and bytes received on it so far."""
        return [
            {**s, "frames": self.frames[s["mid"]], "bytes": self.bytes[s["mid"]]}
            for s in self.slots
        ]

    def video_frames(self, participant: str | None = None, role: str | None = None) -> int:
        return sum(
            self.frames[s["mid"]]
            for s in self.slots
            if s["kind"] == "video"
            and (participant is None or s["participant"] == participant)
            and (role is None or s["role"] == role)
        )

    async def close(self) -> None:
        for task in [*self._tasks, *([self._reader] if self._reader else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for pc in (self.pub_pc, self.sub_pc):
            if pc is not None:
                await pc.close()
        if self._ws is not None:
            await self._ws.close()
        if self._http is not None:
            await self._http.close()

    # incoming -----------------------------------------------------------
    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            msg = json.loads(message.data)
            kind = msg.get("type")
            if kind == "joined":
                self.joined = msg
                self._ice = list(msg.get("iceServers", []))
                self.participants = {str(p["id"]): p for p in msg.get("participants", [])}
                self.speaker = msg.get("speaker")
            elif kind == "offer":
                # The socket may close while we answer (a drain): keep reading, so that
                # the close is seen now and not at the next heartbeat.
                with contextlib.suppress(ConnectionError):
                    await self._answer(str(msg["sdp"]))
            elif kind == "publish-answer":
                if self._publish_answer is not None and not self._publish_answer.done():
                    self._publish_answer.set_result(str(msg["sdp"]))
            elif kind == "slots":
                self.slots = list(msg["slots"])
            elif kind == "layers":
                self.layers = {"high": bool(msg.get("high")), "low": bool(msg.get("low"))}
                self.layer_changes += 1
                self._apply_layers()
            elif kind == "participant-joined":
                p = msg["participant"]
                self.participants[str(p["id"])] = p
            elif kind == "participant-updated":
                p = msg["participant"]
                if str(p["id"]) in self.participants:  # not oneself (a raised hand)
                    self.participants[str(p["id"])] = p
            elif kind == "participant-left":
                self.participants.pop(str(msg.get("id")), None)
            elif kind == "speaker":
                self.speaker = msg.get("id")
            elif kind == "closed":
                self.closed_reason = str(msg.get("reason"))
            await self.inbox.put(msg)
        await self.inbox.put({"type": "socket-closed", "code": self._ws.close_code})

    def _apply_layers(self) -> None:
        for layer, source in LAYER_SOURCES.items():
            set_paused = getattr(self.published.get(source), "set_paused", None)
            if callable(set_paused):
                set_paused(not self.layers[layer])

    async def _answer(self, sdp: str) -> None:
        if self.sub_pc is None:
            self.sub_pc = rtc.new_peer_connection(rtc.client_ice_servers(self._ice))
            pc = self.sub_pc

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                transceiver = next(t for t in pc.getTransceivers() if t.receiver.track is track)
                if not self.decode:
                    passthrough.forward_encoded(transceiver)
                task = asyncio.create_task(self._count(str(transceiver.mid), track))
                self._tasks.add(task)

        pc = self.sub_pc
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        await self.send({"type": "answer", "sdp": pc.localDescription.sdp})

    async def _count(self, mid: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                self.frames[mid] += 1
                if isinstance(frame, passthrough.EncodedFrame):
                    self.bytes[mid] += len(frame)
                if track.kind == "video" and self.first_frame_at is None:
                    self.first_frame_at = time.monotonic()
