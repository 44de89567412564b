"""Peer connections as the backend makes them: ICE servers, announced address, codecs."""

from __future__ import annotations

import re

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
)
from aiortc.rtcrtptransceiver import RTCRtpTransceiver

from visio_core.settings import Settings

_HOST_CANDIDATE = re.compile(
    r"^(a=candidate:\S+ \d+ \S+ \d+ )(\S+)( \d+ typ host.*)$", re.MULTILINE
)
_CONNECTION = re.compile(r"^c=IN IP4 \S+$", re.MULTILINE)


def new_peer_connection(ice_servers: list[RTCIceServer] | None = None) -> RTCPeerConnection:
    """A connection that bundles everything on one transport.

    The backend uses no STUN server: it is reached on its own (or announced)
    address, and aiortc's default public STUN server would stall gathering
    wherever the Internet is out of reach. Max-bundle: with aiortc's default
    policy, an m-line added by renegotiation could be answered without
    candidates (port 9) and its sender never started.
    """
    return RTCPeerConnection(
        RTCConfiguration(iceServers=ice_servers or [], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
    )


def announce(sdp: str, address: str) -> str:
    """Write `address` into our host candidates: the server sits behind a 1:1 NAT
    (a cloud instance's public IP) and clients must aim at that address."""
    if not address:
        return sdp
    sdp = _HOST_CANDIDATE.sub(lambda m: m.group(1) + address + m.group(3), sdp)
    return _CONNECTION.sub(f"c=IN IP4 {address}", sdp)


def browser_ice_servers(settings: Settings) -> list[dict[str, object]]:
    """What the page hands to RTCPeerConnection: TURN for participants behind strict NATs."""
    if not settings.turn_url:
        return []
    server: dict[str, object] = {"urls": [settings.turn_url]}
    if settings.turn_username:
        server["username"] = settings.turn_username
        server["credential"] = settings.turn_credential
    return [server]


def client_ice_servers(servers: list[dict[str, object]]) -> list[RTCIceServer]:
    result = []
    for s in servers:
        urls = s.get("urls")
        result.append(
            RTCIceServer(
                urls=urls if isinstance(urls, list) else [str(urls)],
                username=str(s["username"]) if "username" in s else None,
                credential=str(s["credential"]) if "credential" in s else None,
            )
        )
    return result


def prefer_forwardable_codecs(transceiver: RTCRtpTransceiver) -> None:
    """Offer VP8 (video) or Opus (audio) only: frames are forwarded as they were
    encoded, so every participant must speak the same codec."""
    caps = RTCRtpSender.getCapabilities(transceiver.kind)
    wanted = "video/vp8" if transceiver.kind == "video" else "audio/opus"
    chosen = [c for c in caps.codecs if c.mimeType.lower() in (wanted, f"{transceiver.kind}/rtx")]
    transceiver.setCodecPreferences(chosen)
