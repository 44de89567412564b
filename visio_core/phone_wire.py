"""The phone calls' socket between the front (SIP gateway) and a room's media worker.

The front keeps the line (SIP, RTP, G.711, keys, prompts, dialling); the room's
worker runs the room half of the call (lobby, participant, voice, mix). They
talk over one WebSocket per call, `GET /internal/phone/{room_id}` on the
worker's Unix socket; docs/signaling.md ("Between the front and the media
workers: phone calls") describes every message. Both sides import only this
module of each other's: numpy and the sample type, nothing of SIP or of rooms.

Binary frames carry audio: 16-bit signed little-endian PCM at 8 kHz, mono.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]  # 8 kHz mono samples, as both sides handle them

PATH = "/internal/phone/{room_id}"
MAX_MESSAGE = 64 * 1024  # a frame is 320 bytes (20 ms); a caller's packet at most 2560
HEARTBEAT = 10.0  # s: a peer that stops answering pings is gone
BACKLOG = 50  # audio frames (1 s) waiting to be written at most; more are dropped

# front -> worker
CALL = "call"  # first message: {"caller", "source", "occurrence", "around"}
KEY = "key"  # {"key": "0".."9" | "*" | "#"}
# worker -> front
SAY = "say"  # {"prompt": name, "cut": bool}
STOP_PROMPT = "stop-prompt"
CLOCK = "clock"  # {"on": bool}: who paces the caller's audio
JOINED = "joined"  # {"id": participant id}
END = "end"  # {"outcome": text for the logs, "say": prompt name | null}


def pcm_bytes(pcm: Pcm | None) -> bytes:
    """A frame's payload; silence (None) is the empty frame."""
    if pcm is None:
        return b""
    return pcm.astype("<i2", copy=False).tobytes()


def pcm_of(data: bytes) -> Pcm | None:
    """The samples of a frame (None: silence); a stray odd byte is ignored."""
    usable = len(data) - len(data) % 2
    if not usable:
        return None
    return np.frombuffer(data[:usable], dtype="<i2").astype(np.int16, copy=False)
