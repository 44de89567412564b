"""Test captures for sipp's play_pcap_audio, built from the captures sip-tester ships.

Each `dtmf_2833_<key>.pcap` holds one key press whose packets share one RTP
timestamp, and every press of the same key reuses it: replayed twice in a row
it would look like a retransmission to a correct receiver. So each press here
gets its own timestamp (and sequence numbers that keep counting).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

SHARE = Path("/usr/share/sip-tester")
NAMES = {"*": "star", "#": "pound"}
GLOBAL = struct.Struct("<IHHiIII")
RECORD = struct.Struct("<IIII")


@dataclass
class Packet:
    time: float
    frame: bytes  # Ethernet + IPv4 + UDP + RTP, as captured

    @property
    def rtp_offset(self) -> int:
        ihl = (self.frame[14] & 0x0F) * 4
        return 14 + ihl + 8


def read(path: Path) -> tuple[bytes, list[Packet]]:
    data = path.read_bytes()
    header, offset, packets = data[: GLOBAL.size], GLOBAL.size, []
    while offset + RECORD.size <= len(data):
        sec, usec, incl, _ = RECORD.unpack_from(data, offset)
        offset += RECORD.size
        packets.append(Packet(sec + usec / 1e6, data[offset : offset + incl]))
        offset += incl
    return header, packets


def write(path: Path, header: bytes, packets: list[Packet]) -> Path:
    out = bytearray(header)
    for p in packets:
        sec = int(p.time)
        out += RECORD.pack(sec, round((p.time - sec) * 1e6), len(p.frame), len(p.frame))
        out += p.frame
    path.write_bytes(bytes(out))
    return path


def _rewrite(p: Packet, time: float, seq: int, timestamp: int) -> Packet:
    frame = bytearray(p.frame)
    struct.pack_into("!HI", frame, p.rtp_offset + 2, seq & 0xFFFF, timestamp & 0xFFFFFFFF)
    return Packet(time, bytes(frame))


def keys(path: Path, presses: str, gap: float = 0.3, first: int = 0) -> Path:
    """One capture pressing `presses` in turn, `gap` seconds apart.

    sipp replays a capture as it is: a second capture played in the same call
    must start at a later `first` press so its timestamps are new too.
    """
    header, out, seq = b"", [], 1000 + first * 10
    for i, key in enumerate(presses, start=first):
        header, packets = read(SHARE / f"dtmf_2833_{NAMES.get(key, key)}.pcap")
        start = packets[0].time
        for p in packets:
            out.append(_rewrite(p, 1e9 + i * gap + (p.time - start), seq, 16000 + i * 4000))
            seq += 1
    return write(path, header, out)


def speech(path: Path, repeat: int = 1) -> Path:
    """sip-tester's A-law speech capture, looped `repeat` times with continuous numbering."""
    header, packets = read(SHARE / "g711a.pcap")
    first, length = packets[0].time, packets[-1].time - packets[0].time + 0.03
    out, seq = [], 1
    for r in range(repeat):
        for p in packets:
            out.append(_rewrite(p, 1e9 + r * length + (p.time - first), seq, 240 * seq))
            seq += 1
    return write(path, header, out)
