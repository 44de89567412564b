"""The seam into aiortc's private API, and nothing else.

aiortc always decodes what it receives and encodes what it sends; its sender
accepts already-encoded `av.Packet`s, but its receiver has no pass-through. This
module (and only this one) reaches into aiortc 1.16.0 internals to:

- swap the decoder that `aiortc.rtcrtpreceiver` looks up for a pass-through that
  hands whole encoded frames out as `av.Packet(pts=RTP timestamp)`, *per
  receiver*: a transceiver is marked by a flag on its negotiated codec objects
  (deep copies owned by that transceiver), so a recorder or phone mixer in the
  same process still gets decoded frames from unmarked receivers;
- read the RFC 6464 audio level of each incoming packet before aiortc drops it;
- send a keyframe request (PLI) from a receiver, and catch the PLI/FIR that a
  browser sends to one of our senders (aiortc would only flag its own encoder);
- offer 127.0.0.1 as an ICE host candidate when the machine has no other
  address (aioice never does; a loopback-only network namespace needs it).

The version is pinned exactly in pyproject.toml and checked by `install()`;
tests/room/test_passthrough.py exercises each hook against the real library.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import aioice.ice
import aiortc
import aiortc.rtcrtpreceiver
import av
from aiortc import RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Decoder
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

log = logging.getLogger("visio.sfu")

SUPPORTED_AIORTC = "1.16.0"
_FLAG = "_visio_passthrough"
# Typed as Any on purpose: these are the private names this module exists to touch.
_RECEIVER_MODULE: Any = aiortc.rtcrtpreceiver
_ICE_MODULE: Any = aioice.ice
_STOCK_GET_DECODER = _RECEIVER_MODULE.get_decoder
_STOCK_HOST_ADDRESSES = _ICE_MODULE.get_host_addresses
FORWARDED_CODECS = frozenset({"video/vp8", "audio/opus"})


class PassthroughDecoder(Decoder):
    """Hands the jitter buffer's re-assembled frame out untouched, as an av.Packet."""

    def __init__(self, clock_rate: int) -> None:
        self.time_base = Fraction(1, clock_rate)

    def decode(self, encoded_frame: JitterFrame) -> list[Any]:
        packet = av.Packet(encoded_frame.data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        return [packet]


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


def install() -> None:
    """Put the hooks in place (idempotent); call once before any peer connection."""
    if aiortc.__version__ != SUPPORTED_AIORTC:
        raise RuntimeError(
            f"conference_backend.sfu.passthrough supports aiortc {SUPPORTED_AIORTC} only,"
            f" found {aiortc.__version__}: re-check the seam before changing the pin"
        )
    _RECEIVER_MODULE.get_decoder = _get_decoder
    _ICE_MODULE.get_host_addresses = _host_addresses


def forward_encoded(transceiver: RTCRtpTransceiver) -> str:
    """Make this transceiver's receiver hand out encoded frames; returns the codec.

    Call from the peer connection's "track" event: aiortc negotiates the codecs
    just before emitting it and starts the receiver (and the decoder lookup)
    only once the transport is connected, later.
    """
    codecs: list[RTCRtpCodecParameters] = transceiver._codecs
    for codec in codecs:
        setattr(codec, _FLAG, True)
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
