"""SDP offer/answer (RFC 3264) for a phone leg: PCMA or PCMU, plus telephone-event."""

from __future__ import annotations

import time
from dataclasses import dataclass

STATIC = {0: "PCMU", 8: "PCMA"}
MAX_SDP = 8192


class SdpError(ValueError):
    """The offer cannot be answered (the gateway replies 488 Not Acceptable Here)."""


@dataclass(frozen=True)
class Negotiated:
    codec: str  # "PCMA" | "PCMU"
    payload_type: int
    dtmf_payload_type: int | None
    address: str  # where the caller wants its audio
    port: int


def negotiate(offer: str) -> Negotiated:
    """The first G.711 codec the caller offers, and its telephone-event type if any."""
    if len(offer) > MAX_SDP:
        raise SdpError("offer too large")
    session_address = ""
    media_address = ""
    port = 0
    formats: list[int] = []
    names: dict[int, str] = {}
    in_audio = False
    seen_audio = False
    for raw in offer.splitlines():
        line = raw.strip()
        if line.startswith("m="):
            parts = line[2:].split()
            in_audio = not seen_audio and len(parts) >= 4 and parts[0] == "audio"
            if in_audio:
                seen_audio = True
                if not parts[1].isdigit() or "RTP/AVP" not in parts[2]:
                    raise SdpError("unsupported media line")
                port = int(parts[1].split("/")[0])
                formats = [int(p) for p in parts[3:] if p.isdigit() and int(p) < 128]
        elif line.startswith("c="):
            parts = line[2:].split()
            if len(parts) == 3 and parts[0] == "IN" and parts[1] in ("IP4", "IP6"):
                address = parts[2].split("/")[0]
                if in_audio:
                    media_address = address
                elif not seen_audio:
                    session_address = address
        elif in_audio and line.startswith("a=rtpmap:"):
            number, _, encoding = line[9:].partition(" ")
            if number.isdigit():
                names[int(number)] = encoding.split("/")[0].strip().upper()
    if not seen_audio or not 0 < port < 65536:
        raise SdpError("no audio stream")
    address = media_address or session_address
    if not address:
        raise SdpError("no connection address")
    dtmf = next((pt for pt in formats if names.get(pt) == "TELEPHONE-EVENT"), None)
    for pt in formats:
        name = names.get(pt, STATIC.get(pt, ""))
        if name in ("PCMA", "PCMU"):
            return Negotiated(name, pt, dtmf, address, port)
    raise SdpError("neither PCMA nor PCMU offered")


def answer(neg: Negotiated, address: str, port: int, session: int | None = None) -> str:
    session = session if session is not None else int(time.time())
    family = "IP6" if ":" in address else "IP4"
    formats = [str(neg.payload_type)]
    lines = [
        "v=0",
        f"o=visio {session} {session} IN {family} {address}",
        "s=visio",
        f"c=IN {family} {address}",
        "t=0 0",
    ]
    attributes = [f"a=rtpmap:{neg.payload_type} {neg.codec}/8000"]
    if neg.dtmf_payload_type is not None:
        formats.append(str(neg.dtmf_payload_type))
        attributes += [
            f"a=rtpmap:{neg.dtmf_payload_type} telephone-event/8000",
            f"a=fmtp:{neg.dtmf_payload_type} 0-16",
        ]
    lines.append(f"m=audio {port} RTP/AVP {' '.join(formats)}")
    lines += [*attributes, "a=ptime:20", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"
