"""RTP packets (RFC 3550) and RFC 4733 telephone-events, pure: bytes in, values out.

A key press is one event spread over several packets sharing one RTP timestamp
(the start of the event); the last three carry the end bit. Retransmitted
packets and the repeated end packets must not yield the key twice, so the
decoder reports a key once per (SSRC, timestamp).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

HEADER = struct.Struct("!BBHII")
EVENTS = "0123456789*#ABCD"


class RtpError(ValueError):
    pass


@dataclass(frozen=True)
class RtpPacket:
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False


def parse(data: bytes) -> RtpPacket:
    if len(data) < HEADER.size:
        raise RtpError("short packet")
    first, second, seq, ts, ssrc = HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RtpError("not RTP version 2")
    offset = HEADER.size + 4 * (first & 0x0F)
    if first & 0x10:  # header extension
        if len(data) < offset + 4:
            raise RtpError("truncated extension")
        (words,) = struct.unpack_from("!H", data, offset + 2)
        offset += 4 + 4 * words
    end = len(data)
    if first & 0x20:  # padding
        end -= data[-1] if data else 0
    if offset > end:
        raise RtpError("truncated packet")
    return RtpPacket(second & 0x7F, seq, ts, ssrc, data[offset:end], bool(second & 0x80))


def build(packet: RtpPacket) -> bytes:
    second = (0x80 if packet.marker else 0) | (packet.payload_type & 0x7F)
    header = HEADER.pack(
        0x80, second, packet.sequence & 0xFFFF, packet.timestamp & 0xFFFFFFFF, packet.ssrc
    )
    return header + packet.payload


@dataclass(frozen=True)
class TelephoneEvent:
    key: str
    end: bool
    volume: int
    duration: int


def parse_event(payload: bytes) -> TelephoneEvent | None:
    """One RFC 4733 event payload; None for events that are not keys (16+)."""
    if len(payload) < 4:
        return None
    event, flags, duration = struct.unpack_from("!BBH", payload)
    if event >= len(EVENTS):
        return None
    return TelephoneEvent(EVENTS[event], bool(flags & 0x80), flags & 0x3F, duration)


def event_payload(key: str, end: bool, duration: int, volume: int = 10) -> bytes:
    return struct.pack("!BBH", EVENTS.index(key), (0x80 if end else 0) | volume, duration)


class DtmfDecoder:
    """Keys from a stream of telephone-event packets, each key once."""

    def __init__(self, memory: int = 32) -> None:
        self._seen: list[tuple[int, int]] = []
        self._memory = memory

    def feed(self, packet: RtpPacket) -> str | None:
        event = parse_event(packet.payload)
        if event is None:
            return None
        ident = (packet.ssrc, packet.timestamp)
        if ident in self._seen:
            return None  # the same event again: an update, an end repeat or a retransmission
        self._seen.append(ident)
        del self._seen[: -self._memory]
        return event.key


class RtpSender:
    """Sequence numbers and timestamps of one outgoing G.711 stream (8 kHz, 20 ms)."""

    def __init__(self, payload_type: int, ssrc: int, sequence: int, timestamp: int) -> None:
        self.payload_type = payload_type
        self.ssrc = ssrc
        self.sequence = sequence
        self.timestamp = timestamp
        self._first = True

    def next(self, payload: bytes, samples: int = 160) -> bytes:
        packet = RtpPacket(
            self.payload_type, self.sequence, self.timestamp, self.ssrc, payload, self._first
        )
        self._first = False
        self.sequence = (self.sequence + 1) & 0xFFFF
        self.timestamp = (self.timestamp + samples) & 0xFFFFFFFF
        return build(packet)
