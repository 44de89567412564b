"""The seam into aiortc's private API, and nothing else.

aiortc always decodes what it receives and encodes what it sends; its sender
accepts already-encoded `av.Packet`s, but its receiver has no pass-through. This
module (and only this one) reaches into aiortc 1.16.0 internals to:

- swap the decoder that `aiortc.rtcrtpreceiver` looks up for a pass-through that
  hands whole encoded frames out as `EncodedFrame(data, pts=RTP timestamp)`, *per
  receiver*: a transceiver is marked by a flag on its negotiated codec objects
  (deep copies owned by that transceiver), so a recorder or phone mixer in the
  same process still gets decoded frames from unmarked receivers;
- read the RFC 6464 audio level of each incoming packet before aiortc drops it;
- send a keyframe request (PLI) from a receiver, and catch the PLI/FIR that a
  browser sends to one of our senders (aiortc would only flag its own encoder);
- offer 127.0.0.1 as an ICE host candidate when the machine has no other
  address (aioice never does; a loopback-only network namespace needs it);
- send already-encoded frames with a leaner loop than aiortc's sender
  (`forward_sender`): one header template and one clock read per frame instead of
  per packet, and a direct hand-over to the socket instead of four nested
  coroutines; everything else (SRTP, NACK history, sender reports) as aiortc does;
- keep ICE consent checks from hanging up on peers whose answers a busy event
  loop reads late (consent.py, aioice's side of the same seam);
- read the clock without building datetimes: aiortc stamps every packet it
  sends (abs-send-time, twice) and receives with `aiortc.clock`, which goes
  through `datetime.now()` and timedelta arithmetic, ~5% of a forwarding
  server's CPU; the replacements return the same values from `time.time_ns()`.

The version is pinned exactly in pyproject.toml and checked by `install()`;
tests/room/test_passthrough.py exercises each hook against the real library.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
import time
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import aiortc.clock
import aiortc.rtcrtpreceiver
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs import get_encoder
from aiortc.codecs.base import Decoder
from aiortc.codecs.vpx import PACKET_MAX as VP8_PACKET_MAX
from aiortc.jitterbuffer import JitterFrame
from aiortc.mediastreams import VIDEO_TIME_BASE, MediaStreamError, convert_timebase
from aiortc.rtcdtlstransport import State as DtlsState
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, RtpPacket
from aiortc.utils import random32

from visio_rooms.sfu import consent

log = logging.getLogger("visio.sfu")

SUPPORTED_AIORTC = "1.16.0"
_FLAG = "_visio_passthrough"
# Typed as Any on purpose: these are the private names this module exists to touch.
_RECEIVER_MODULE: Any = aiortc.rtcrtpreceiver
_ICE_MODULE: Any = aioice.ice
_CLOCK_MODULE: Any = aiortc.clock
NTP_UNIX_OFFSET_NS = 2_208_988_800 * 1_000_000_000  # 1900-01-01 to 1970-01-01
_STOCK_GET_DECODER = _RECEIVER_MODULE.get_decoder
_STOCK_HOST_ADDRESSES = _ICE_MODULE.get_host_addresses
FORWARDED_CODECS = frozenset({"video/vp8", "audio/opus"})


class EncodedFrame:
    """One whole encoded frame, as the pass-through receiver hands it out and as
    aiortc's sender takes it back.

    The sender only needs `bytes(frame)`, `pts` and `time_base` (what its VP8 and
    Opus packers read from an `av.Packet`), so one frame's payload is shared by
    every subscriber without a copy: `__bytes__` returns the very same bytes
    object, and each subscriber gets its own small EncodedFrame for its own pts.
    """

    __slots__ = ("data", "pts", "time_base")

    def __init__(self, data: bytes, pts: int, time_base: Fraction) -> None:
        self.data = data
        self.pts = pts
        self.time_base = time_base

    def __bytes__(self) -> bytes:
        return self.data

    def __len__(self) -> int:
        return len(self.data)


class PassthroughDecoder(Decoder):
    """Hands the jitter buffer's re-assembled frame out untouched."""

    def __init__(self, clock_rate: int) -> None:
        self.time_base = Fraction(1, clock_rate)

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        return [EncodedFrame(encoded_frame.data, encoded_frame.timestamp, self.time_base)]


def _get_decoder(codec: RTCRtpCodecParameters) -> Decoder:
    if getattr(codec, _FLAG, False):
        return PassthroughDecoder(codec.clockRate)
    decoder: Decoder = _STOCK_GET_DECODER(codec)
    return decoder


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    addresses: list[str] = _STOCK_HOST_ADDRESSES(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
    if not addresses and use_ipv4:
        # Only loopback exists (a network namespace, a sealed test box): offer it,
        # or no candidate at all would be gathered.
        return ["127.0.0.1"]
    return addresses


def ntp_now() -> int:
    """`aiortc.clock.current_ntp_time()` (64-bit NTP: seconds << 32 | fraction), same value."""
    ns = time.time_ns() + NTP_UNIX_OFFSET_NS
    seconds, rest = divmod(ns, 1_000_000_000)
    return (seconds << 32) | (rest // 1000 << 32) // 1_000_000


def ms_now() -> int:
    """`aiortc.clock.current_ms()`: milliseconds since the NTP epoch."""
    return (time.time_ns() + NTP_UNIX_OFFSET_NS) // 1_000_000


def install() -> None:
    """Put the hooks in place (idempotent); call once before any peer connection."""
    if aiortc.__version__ != SUPPORTED_AIORTC:
        raise RuntimeError(
            f"visio_rooms.sfu.passthrough supports aiortc {SUPPORTED_AIORTC} only,"
            f" found {aiortc.__version__}: re-check the seam before changing the pin"
        )
    _RECEIVER_MODULE.get_decoder = _get_decoder
    _ICE_MODULE.get_host_addresses = _host_addresses
    _CLOCK_MODULE.current_ntp_time = ntp_now
    _CLOCK_MODULE.current_ms = ms_now
    consent.install()


def forward_encoded(transceiver: RTCRtpTransceiver) -> str:
    """Make this transceiver's receiver hand out encoded frames; returns the codec.

    Call from the peer connection's "track" event: aiortc negotiates the codecs
    just before emitting it and starts the receiver (and the decoder lookup)
    only once the transport is connected, later.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for codec in codecs:
        setattr(codec, _FLAG, True)
    # No REMB to publishers: aiortc's delay-based estimator times packets when a busy
    # event loop gets to them, reads that lateness as congestion and made every camera
    # in a loaded room fall to 30-80 kbit/s; browsers keep their loss-based control.
    # It also saved a Python computation per video packet.
    receiver: Any = transceiver.receiver
    receiver._RTCRtpReceiver__remote_bitrate_estimator = None
    media = [c for c in codecs if c.name.lower() != "rtx"]
    return media[0].mimeType.lower() if media else ""


def is_forwarded(transceiver: RTCRtpTransceiver) -> bool:
    return all(getattr(c, _FLAG, False) for c in transceiver._codecs)


def observe_audio_level(receiver: RTCRtpReceiver, sink: Callable[[int], None]) -> None:
    """Call `sink(level)` with each packet's RFC 6464 level (0 loud … 127 silent)."""
    target: Any = receiver
    handle = target._handle_rtp_packet

    async def with_level(packet: Any, arrival_time_ms: int) -> None:
        level = packet.extensions.audio_level
        if level is not None:
            sink(int(level[1]))
        await handle(packet, arrival_time_ms=arrival_time_ms)

    target._handle_rtp_packet = with_level


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a PLI for the receiver's most recent media source; False if none yet."""
    rtx: dict[int, int] = getattr(receiver, "_RTCRtpReceiver__rtx_ssrc")  # noqa: B009 - RTX -> media
    sources = [s for s in receiver.getSynchronizationSources() if s.source not in rtx]
    if not sources:
        return False
    ssrc = max(sources, key=lambda s: s.timestamp).source
    await receiver._send_rtcp_pli(ssrc)
    return True


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Route the PLI/FIR a subscriber sends for this sender to `callback`."""
    target: Any = sender
    target._send_keyframe = callback


class RembProbe:
    """Stands in for a video sender's encoder: remembers the receiver's REMB estimate."""

    def __init__(self) -> None:
        self.target_bitrate: int | None = None
        self.at = 0.0

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name == "target_bitrate" and value is not None:
            super().__setattr__("at", time.monotonic())


def remb_estimate(sender: RTCRtpSender, max_age: float = 5.0) -> tuple[int, float] | None:
    """The receiver's latest bandwidth estimate for this sender (bit/s, when), if recent."""
    probe = getattr(sender, _SENDER + "encoder", None)
    if not isinstance(probe, RembProbe) or probe.target_bitrate is None:
        return None
    if time.monotonic() - probe.at > max_age:
        return None
    return probe.target_bitrate, probe.at


# The lean sender ------------------------------------------------------------------
_SENDER = "_RTCRtpSender__"  # RTCRtpSender's name-mangled private attributes
_HEADER = struct.Struct("!LL")
_EXTENSION = struct.Struct("!LLHH")


def forward_sender(sender: RTCRtpSender) -> None:
    """Make this sender (whose track returns EncodedFrames) use `_run_forwarded`.

    Call before the sender starts (right after addTrack): aiortc starts its RTP
    loop as `self._run_rtp(codec)` once the transport is connected.
    """
    target: Any = sender
    target._run_rtp = functools.partial(_run_forwarded, sender)


def _socket_send(dtls: Any) -> Callable[[bytes], None] | None:
    """Protect with SRTP and hand to the nominated pair's socket, with no coroutine.

    None when the path is not the plain UDP one (TURN-relayed on our side, not
    connected yet): the caller then goes through aiortc's own `_send_rtp`.
    """
    if dtls._state is not DtlsState.CONNECTED:
        return None
    pair = dtls.transport._connection._nominated.get(1)
    if pair is None or not isinstance(pair.protocol, aioice.ice.StunProtocol):
        return None
    protect = dtls._tx_srtp.protect
    udp = pair.protocol.transport
    sendto = udp.sendto
    address = pair.remote_addr
    connected = DtlsState.CONNECTED

    def send(data: bytes) -> None:
        # The peer went away, or its socket was closed under us (the connection
        # closing): stop, as _send_rtp would, instead of failing inside asyncio.
        if dtls._state is not connected or udp.is_closing():
            raise ConnectionError("transport closed")
        sendto(protect(data), address)

    return send


def vp8_payloads(frame: bytes, picture_id: int) -> list[bytes]:
    """RFC 7741 packetisation of one VP8 frame, byte-identical to aiortc's
    `Vp8Encoder._packetize` (descriptor with a 15-bit picture id, S bit on the
    first packet, at most PACKET_MAX bytes each), with the two descriptors
    built once per frame instead of once per packet."""
    pid = bytes((0x80 | picture_id >> 8, picture_id & 0xFF))
    first, rest = b"\x90\x80" + pid, b"\x80\x80" + pid
    size = VP8_PACKET_MAX - len(first)
    return [
        (rest if pos else first) + frame[pos : pos + size] for pos in range(0, len(frame), size)
    ]


class _Stream:
    """One lean sender's outgoing RTP stream: frames in, wire packets (before SRTP) out.

    Same packets as aiortc's loop (header, abs-send-time and mid extensions,
    marker on a frame's last packet), same bookkeeping for retransmissions (the
    NACK history) and for the sender reports (counts and the last NTP/RTP
    timestamps), written once per frame.
    """

    def __init__(self, sender: Any, codec: RTCRtpCodecParameters) -> None:
        assert codec.payloadType is not None  # negotiated before the sender starts
        self.sender = sender
        self.pt = codec.payloadType
        self.history: dict[int, RtpPacket] = getattr(sender, _SENDER + "rtp_history")
        self.extensions_map = getattr(sender, _SENDER + "rtp_header_extensions_map")
        self.mid = getattr(sender, _SENDER + "mid")
        self.encoder = get_encoder(codec)
        self.vp8 = codec.mimeType.lower() == "video/vp8"
        # aiortc's REMB handler sets `target_bitrate` on the sender's encoder: video
        # (packetised here, never encoded) gets a probe that keeps the raw estimate.
        setattr(sender, _SENDER + "encoder", RembProbe() if self.vp8 else self.encoder)
        self.picture_id = random32() & 0x7FFF
        self.seq = random_sequence_number()
        self.origin = random32()
        self.octets = self.count = 0

    def packets(self, frame: Any) -> list[bytes]:
        sender = self.sender
        if self.vp8:
            payloads = vp8_payloads(bytes(frame), self.picture_id)  # EncodedFrame: no copy
            self.picture_id = (self.picture_id + 1) & 0x7FFF
            ts = frame.pts
            if frame.time_base != VIDEO_TIME_BASE:
                ts = convert_timebase(frame.pts, frame.time_base, VIDEO_TIME_BASE)
        else:
            payloads, ts = self.encoder.pack(frame)
        if not payloads:
            return []
        timestamp = (self.origin + ts) & 0xFFFFFFFF
        ntp = aiortc.clock.current_ntp_time()
        extensions = HeaderExtensions()
        extensions.abs_send_time = (ntp >> 14) & 0x00FFFFFF
        extensions.mid = self.mid
        profile, value = self.extensions_map.set(extensions)
        ssrc = sender._ssrc
        if value:  # V=2, X=1; the rest of the header is the same for the whole frame
            first = 0x90
            tail = _EXTENSION.pack(timestamp, ssrc, profile, len(value) >> 2) + value
        else:
            first, tail = 0x80, _HEADER.pack(timestamp, ssrc)
        out = []
        seq, pt, last = self.seq, self.pt, len(payloads) - 1
        for i, payload in enumerate(payloads):
            marker = 0x80 if i == last else 0
            packet = RtpPacket(pt, marker >> 7, seq, timestamp, ssrc, payload)
            packet.extensions = extensions  # a retransmission re-serialises it
            self.history[seq % RTP_HISTORY_SIZE] = packet
            out.append(bytes((first, marker | pt)) + seq.to_bytes(2, "big") + tail + payload)
            seq = (seq + 1) & 0xFFFF
            self.octets += len(payload)
        self.seq = seq
        self.count += len(out)
        setattr(sender, _SENDER + "ntp_timestamp", ntp)
        setattr(sender, _SENDER + "rtp_timestamp", timestamp)
        setattr(sender, _SENDER + "octet_count", self.octets)
        setattr(sender, _SENDER + "packet_count", self.count)
        return out


async def _push(sender: Any, stream: _Stream, track: Any, send: Callable[[bytes], None]) -> None:
    """Push mode: the track hands frames over as they arrive; returns if sending fails."""
    failed = asyncio.get_running_loop().create_future()

    def on_frame(frame: Any) -> None:
        if not sender._enabled or failed.done():
            return
        try:
            for data in stream.packets(frame):
                send(data)
        except Exception as e:  # never into the publisher's loop: that would stop everyone
            failed.set_result(e)

    track.deliver_to(on_frame)
    try:
        error = await failed
        log.info("forwarding sender stops pushing: %r", error)
    finally:
        track.deliver_to(None)


async def _run_forwarded(sender: Any, codec: RTCRtpCodecParameters) -> None:
    """aiortc's `RTCRtpSender._run_rtp` for encoded frames, minus per-packet overhead.

    A track that offers `deliver_to` (our Forwarder) pushes its frames straight
    into the socket; any other is read with recv() as aiortc does.
    """
    started: asyncio.Event = getattr(sender, _SENDER + "rtp_started")
    exited: asyncio.Event = getattr(sender, _SENDER + "rtp_exited")
    stream = _Stream(sender, codec)
    started.set()
    try:
        while True:
            track = getattr(sender, _SENDER + "track")
            if track is None:
                await asyncio.sleep(0.02)
                continue
            send = _socket_send(sender.transport)
            if send is not None and hasattr(track, "deliver_to"):
                await _push(sender, stream, track, send)
                return
            frame = await track.recv()
            if not sender._enabled:
                continue
            for data in stream.packets(frame):
                if send is not None:
                    send(data)
                else:
                    await sender.transport._send_rtp(data)
    except (asyncio.CancelledError, ConnectionError, MediaStreamError):
        pass
    except Exception:  # as aiortc: RTCRtpSender.stop() waits for `exited`, so never skip it
        log.exception("forwarding sender failed")
    finally:
        track = getattr(sender, _SENDER + "track")
        if track is not None:
            track.stop()
            setattr(sender, _SENDER + "track", None)
        setattr(sender, _SENDER + "encoder", None)
        exited.set()
