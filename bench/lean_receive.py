"""A receiving client that counts what arrives instead of processing it (bench/workers.py).

aiortc's receive path costs a synthetic client about three times what the SFU
spends forwarding the same packet (bench/meeting.py: 26 % of a core for the
backend against 80 % for the clients at 15 participants): per packet an event
loop turn, a STUN parse attempt, an asyncio queue hop, SRTP decryption, RTP
parsing, a bitrate estimator, NACK bookkeeping, a jitter buffer and a hand-over
to a decoder thread. On a 2-core machine that shares its cores with the
clients, such receivers use up the core a second media worker needs.

`LeanClient` is `visio_rooms.client.RoomClient` with one change: once its
subscribe connection is negotiated, its UDP sockets are no longer read when
they become readable but drained every `POLL` seconds (the kernel keeps what
arrives meanwhile; a batch then costs one loop turn), and the SRTP packets of
the slots the SDP announced are counted there, from the RTP header that SRTP
leaves in clear: a frame per packet with the marker bit (VP8 sets it on a
frame's last packet), bytes as sent on the wire (headers and auth tag
included). They never reach DTLS/SRTP. Every other datagram (STUN, DTLS, RTCP,
an unannounced stream) goes to aioice as before, so ICE and its consent checks,
DTLS, sender reports and renegotiations work as for any client.

What such a receiver does not do: check SRTP integrity, reassemble frames (a
frame whose last packet is lost is not counted, one that lost another packet
still is), send NACKs, PLIs or REMB. The server then has no bandwidth estimate
for it, which it treats as "no limit" (the weak-link rule of
visio_rooms/sfu/selection.py never applies). Its frames arrive up to
POLL late, which nothing here measures.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from visio_rooms.client import RoomClient

log = logging.getLogger("bench.lean_receive")
RTP_HEADER = 12
POLL = 0.05  # s between two drains: ~15 packets per socket at a receiver's ~300/s
DATAGRAM = 2048


class LeanClient(RoomClient):
    def __init__(self, base_url: str, token: str) -> None:
        super().__init__(base_url, token)
        self._mids: dict[Any, str] = {}  # aiortc receiver -> mid of its video slot
        self._poller: asyncio.Task[None] | None = None

    async def _answer(self, sdp: str) -> None:
        await super()._answer(sdp)
        pc = self.sub_pc
        transceivers = pc.getTransceivers() if pc is not None else []
        if not transceivers:
            return
        # After every renegotiation: slots may have been added.
        self._mids.clear()
        self._mids.update({t.receiver: str(t.mid) for t in transceivers if t.kind == "video"})
        if self._poller is None:
            # Bundled: one DTLS transport, one ICE connection, one router for every slot.
            dtls: Any = transceivers[0].receiver.transport
            self._poller = asyncio.create_task(self._poll(dtls))

    async def close(self) -> None:
        if self._poller is not None:
            self._poller.cancel()
            await asyncio.gather(self._poller, return_exceptions=True)
            self._poller = None
        await super().close()

    async def _poll(self, dtls: Any) -> None:
        connection = dtls.transport._connection  # aioice
        ssrcs: dict[int, Any] = dtls._rtp_router.ssrc_table  # kept up to date by aiortc
        sockets = []
        for protocol in list(connection._protocols):  # gathered in setLocalDescription
            protocol.transport.pause_reading()  # from now on read here, in batches
            sockets.append((protocol.transport._sock, protocol))
        mids, frames, counted = self._mids, self.frames, self.bytes
        while sockets:
            await asyncio.sleep(POLL)
            for sock, protocol in list(sockets):
                while True:
                    try:
                        data, addr = sock.recvfrom(DATAGRAM)
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError:  # closed with its connection
                        sockets.remove((sock, protocol))
                        break
                    # RTP, not RTCP (payload types 200-208 with the marker bit), of a slot.
                    if 127 < data[0] < 192 and len(data) > RTP_HEADER and not 192 <= data[1] <= 208:
                        mid = mids.get(ssrcs.get(int.from_bytes(data[8:12], "big")))
                        if mid is not None:
                            if data[1] & 0x80:
                                frames[mid] += 1
                            counted[mid] += len(data)
                            continue
                    try:
                        protocol.datagram_received(data, addr)
                    except Exception:  # as asyncio does: say so, go on reading
                        log.exception("aioice failed on a datagram")
