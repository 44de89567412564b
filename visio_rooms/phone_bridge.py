"""A caller inside a LiveRoom: the PhoneParticipant, its published voice, the room's mix.

Room side of a phone call: it runs in the room's media worker, where the
caller's line is the socket to the front's gateway (visio_rooms/phone_calls.py).
One RoomMixer per live room with callers in it, following the room's web
microphones through `LiveRoom.watchers`; it stops with the last caller.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Protocol

from visio_core.phone_wire import Pcm
from visio_core.tokens import new_participant_id
from visio_rooms.participant import Participant, PhoneParticipant
from visio_rooms.phone_mixer import MixedLeg, RoomMixer
from visio_rooms.phone_voice import OpusVoice, VoiceTrack, level_of
from visio_rooms.rooms import LiveRoom
from visio_rooms.sfu.forwarding import Publication

PHONE_WORD = {"fr": "Téléphone", "en": "Phone"}


def masked_name(caller: str, lang: str) -> str:
    """ "Téléphone …12 34": the last four digits, enough to tell two callers apart."""
    digits = re.sub(r"\D", "", caller)
    word = PHONE_WORD.get(lang, PHONE_WORD["fr"])
    if len(digits) < 4:
        return word
    return f"{word} …{digits[-4:-2]} {digits[-2:]}"


async def _no_keyframes() -> bool:
    return False


class Line(MixedLeg, Protocol):
    """A caller's audio as the room sees it: voice in, the mix out (mixer.MixedLeg)."""

    on_voice: Callable[[Pcm], None] | None

    def queue_voice(self, pcm: Pcm) -> None: ...

    def clear_voice(self) -> None: ...

    async def stop_clock(self) -> None: ...


class MixerPool:
    def __init__(self) -> None:
        self.mixers: dict[LiveRoom, RoomMixer] = {}
        self._follows: dict[LiveRoom, Callable[[], None]] = {}

    def attach(self, room: LiveRoom, pid: str, leg: Line) -> RoomMixer:
        mixer = self.mixers.get(room)
        if mixer is None:
            mixer = self.mixers[room] = RoomMixer(room.id)

            def follow() -> None:
                mixer.sync(
                    {
                        q.id: q.publications["microphone"]
                        for q in room.participants.values()
                        if isinstance(q, Participant) and "microphone" in q.publications
                    }
                )

            room.watchers.append(follow)
            self._follows[room] = follow
            follow()
        mixer.add_leg(pid, leg)
        return mixer

    async def detach(self, room: LiveRoom, pid: str) -> None:
        mixer = self.mixers.get(room)
        if mixer is None:
            return
        await mixer.remove_leg(pid)
        if not mixer.legs:
            del self.mixers[room]
            follow = self._follows.pop(room, None)
            if follow is not None and follow in room.watchers:
                room.watchers.remove(follow)

    async def stop(self) -> None:
        for mixer in list(self.mixers.values()):
            await mixer.stop()
        self.mixers.clear()
        self._follows.clear()


class SilenceGate:
    """Silence suppression for a caller's voice towards the browsers.

    A caller who is only listening (most of them, most of the time) then costs no
    Opus encoding and nothing forwarded; browsers take the gap as discontinuous
    transmission. The hangover keeps word endings and short pauses.
    """

    SILENT_LEVEL = 55  # -55 dBov and quieter: line noise, not a voice (speech: -15 to -40)
    HANGOVER_FRAMES = 15  # 300 ms of 20 ms frames

    def __init__(self) -> None:
        self.quiet = self.HANGOVER_FRAMES + 1  # a call starts silent

    def passes(self, level: int) -> bool:
        self.quiet = 0 if level < self.SILENT_LEVEL else self.quiet + 1
        return self.quiet <= self.HANGOVER_FRAMES


class Bridge:
    """What joining a room made for one caller; `leave()` undoes it."""

    def __init__(
        self,
        room: LiveRoom,
        leg: Line,
        name: str,
        pool: MixerPool,
        *,
        pid: str | None = None,
        marks: frozenset[str] = frozenset(),
    ) -> None:
        self.room = room
        self.leg = leg
        self.pool = pool
        self.pid = pid or new_participant_id()
        self.track = VoiceTrack()
        self.voice = OpusVoice(self.track)
        self.participant = PhoneParticipant(self.pid, name, marks=marks)
        self.publication = Publication(self.pid, "audio", "microphone", self.track, _no_keyframes)
        self.participant.publications["microphone"] = self.publication
        self._level = room.level_sink(self.pid)
        self._gate = SilenceGate()

    def heard(self, pcm: Pcm) -> None:
        """The caller's voice (decoded G.711 by the gateway): to the mix, the speaker
        detector, the browsers."""
        if self.leg.muted:
            return
        self.leg.queue_voice(pcm)
        level = level_of(pcm)
        self._level(level)
        if self._gate.passes(level):
            self.voice.encode(pcm)
        else:
            self.voice.skip(len(pcm))

    async def enter(self) -> None:
        self.publication.start()
        self.leg.on_voice = self.heard
        await self.room.add(self.participant)
        await self.leg.stop_clock()  # from now on the room's mix paces the caller's audio
        self.pool.attach(self.room, self.pid, self.leg)

    async def set_muted(self, muted: bool) -> None:
        self.leg.muted = muted
        self.participant.audio = not muted
        if muted:
            self.leg.clear_voice()
        await self.room.broadcast(
            {"type": "participant-updated", "participant": self.participant.public()}
        )

    async def leave(self) -> None:
        self.leg.on_voice = None
        await self.pool.detach(self.room, self.pid)
        await self.room.remove(self.participant)  # a no-op when the room closed first
        await self.participant.close()
        self.track.stop()
