"""Which rooms are recorded or streamed, and the lifecycle around each recorder.

A background task looks at the live rooms every TICK seconds (rooms.py needs no
hook): a room with people in it whose organizer asked for a recording
(`record`) or a live stream (`stream_url`) gets a Recorder; the recorder
follows the room's microphones and main picture, and stops once the room has
been empty, closed or gone for EMPTY_GRACE seconds (a page reloading does not
cut the file). Each start is a new segment of the occurrence's recording.
When a recording ends, the organizer gets a mail with the download link; a
full disk or an unreachable ingest gets them one notice, and the room goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.recordings import Recordings, expired, parse_stamp
from visio_core.settings import Settings
from visio_core.smtp import send_notice
from visio_rooms.recorder.session import Recorder
from visio_rooms.recorder.streamer import mask_url, valid_stream_url
from visio_rooms.rooms import LiveRoom, RoomManager
from visio_rooms.sfu.forwarding import Publication

log = logging.getLogger("visio.recorder")
TICK = 0.5
EMPTY_GRACE = 3.0
RETRY_AFTER = 60.0  # a recorder that could not start is tried again this much later
PURGE_EVERY = 3600.0
LATE_MAIL_EVERY = 60.0
LATE_MAIL_AFTER = dt.timedelta(minutes=5)  # ended by a restart and nobody came back

_TEXT = {
    "fr": {
        "done_subject": "Enregistrement disponible : {title}",
        "done_body": "L'enregistrement de votre réunion « {title} » est disponible ici "
        "(connectez-vous au portail avec votre compte) :\n\n{url}\n\n"
        "Il sera supprimé automatiquement dans {days} jours.\n",
        "fail_subject": "Problème d'enregistrement : {title}",
        "disk": "L'enregistrement de la réunion « {title} » s'est arrêté : {detail}. "
        "Ce qui a été enregistré jusque-là est conservé ; la réunion continue.\n",
        "stream": "La diffusion en direct de la réunion « {title} » vers {target} a échoué : "
        "{detail}. Nouvelle tentative automatique ; la réunion continue.\n",
    },
    "en": {
        "done_subject": "Recording available: {title}",
        "done_body": "The recording of your meeting “{title}” is available here "
        "(sign in to the portal with your account):\n\n{url}\n\n"
        "It will be deleted automatically in {days} days.\n",
        "fail_subject": "Recording problem: {title}",
        "disk": "The recording of the meeting “{title}” stopped: {detail}. "
        "What was recorded until then is kept; the meeting goes on.\n",
        "stream": "The live stream of the meeting “{title}” to {target} failed: {detail}. "
        "It is retried automatically; the meeting goes on.\n",
    },
}


def main_source(room: LiveRoom, last: str | None) -> tuple[Publication | None, str, str | None]:
    """The shared screen, else the speaker's camera, else the last shown or the first one."""
    people = room.participants
    if room.screen_owner:
        sharer = people.get(room.screen_owner)
        pub = sharer.publications.get("screen") if sharer else None
        if sharer is not None and pub is not None and pub.active:
            return pub, sharer.name, sharer.id
    for pid in (room.speaker, last, *people):
        p = people.get(pid) if pid else None
        if p is not None and "camera" in p.publications:
            return p.publications["camera"], p.name, p.id
    return None, "", None


def wanted(room: LiveRoom) -> tuple[bool, str | None]:
    """(record to a file, stream URL) asked for by the room's organizer."""
    options = room.row.options or {}
    url = str(options.get("stream_url") or "").strip() or None
    return bool(options.get("record")), url


def occurrence_key(room: LiveRoom) -> str:
    return room.occurrence or room.around.astimezone(dt.UTC).strftime("%Y%m%d")


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", text)[:64] or "_"


@dataclass
class Active:
    room: LiveRoom
    recorder: Recorder
    recording_id: int | None
    segment_id: int | None
    last_main: str | None = None
    shown: tuple[str, str] | None = None  # (participant, source) the picture follows
    told: set[str] = field(default_factory=set)  # participants whose page shows "recording"
    empty_since: float | None = None
    notices: set[str] = field(default_factory=set)


class RecordingService:
    def __init__(self, settings: Settings, db: Database, rooms: RoomManager) -> None:
        self.settings = settings
        self.db = db
        self.rooms = rooms
        self.store = Recordings(db)
        self.accounts = Accounts(db)
        self.active: dict[str, Active] = {}
        self.stopping = False
        self._mails: set[asyncio.Task[None]] = set()
        self._closing: set[asyncio.Task[None]] = set()  # recorders being stopped
        self._bad_urls: set[str] = set()
        self._failed: dict[str, float] = {}  # room id -> when its recorder failed to start
        self.requested: set[str] = set()  # VISIO_RECORD_START=button: started by the organizer

    @property
    def folder(self) -> Path:
        return self.settings.recordings_dir

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        last_purge = last_mail = float("-inf")
        while True:
            try:
                await self.tick()
                if loop.time() - last_purge >= PURGE_EVERY:
                    last_purge = loop.time()
                    await asyncio.to_thread(self.purge)
                if loop.time() - last_mail >= LATE_MAIL_EVERY:
                    last_mail = loop.time()
                    self.late_mails()
            except Exception:  # one bad room must not stop the others' recordings
                log.exception("recording pass failed")
            await asyncio.sleep(TICK)

    async def tick(self) -> None:
        now = asyncio.get_running_loop().time()
        for room_id, live in list(self.rooms.rooms.items()):
            if room_id in self.active or live.closed or not live.participants:
                continue
            if now - self._failed.get(room_id, float("-inf")) < RETRY_AFTER:
                continue
            if self.settings.record_start == "button" and room_id not in self.requested:
                continue
            record, url = wanted(live)
            if url and not valid_stream_url(url):
                if url not in self._bad_urls:
                    self._bad_urls.add(url)
                    log.warning(
                        "room %s: stream URL %s is not rtmp:// or rtmps://; ignored",
                        room_id,
                        mask_url(url),
                    )
                url = None
            if record or url:
                await self.start(live, record, url)
        for room_id, act in list(self.active.items()):
            room: LiveRoom | None = self.rooms.rooms.get(room_id)
            if room is not None and room is not act.room and not room.closed:
                act.room = room  # emptied and joined again within the grace: same segment
            record, url = wanted(act.room)
            if act.room.closed is not None or not (record or url):
                await self.stop(room_id, ended=True)
                continue
            if room is None or not room.participants:
                act.empty_since = act.empty_since if act.empty_since is not None else now
                if now - act.empty_since >= EMPTY_GRACE:
                    await self.stop(room_id, ended=True)
                continue
            act.empty_since = None
            self.follow(act)

    def follow(self, act: Active) -> None:
        room = act.room
        voices = [
            p.publications["microphone"]
            for p in room.participants.values()
            if "microphone" in p.publications
        ]
        main, name, owner = main_source(room, act.last_main)
        if owner is not None:
            act.last_main = owner
        shown = (name, main.source) if main is not None else ("", "card")
        if shown != act.shown:
            act.shown = shown
            log.info("room %s: the recording shows %s (%s)", room.id, name or "-", shown[1])
        names = [p.name for p in room.participants.values()]
        act.recorder.follow(voices, main, name, names)
        for pid, p in room.participants.items():
            if pid not in act.told:  # each page learns that it is being recorded
                act.told.add(pid)
                self._tell(p, True)

    def _tell(self, participant: object, on: bool) -> None:
        send = getattr(participant, "send", None)  # a phone caller has no page
        if send is not None:
            self._spawn(send({"type": "recording", "on": on}))

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._mails.add(task)
        task.add_done_callback(self._mails.discard)

    async def control(self, room_id: str, login: str, start: bool) -> bool:
        """The organizer's start/stop buttons (VISIO_RECORD_START=button); False: refused."""
        room = self.rooms.rooms.get(room_id)
        if room is None or not login or login != room.row.owner:
            return False
        record, url = wanted(room)
        if not (record or url):
            return False
        if start:
            self.requested.add(room_id)
            self._failed.pop(room_id, None)
            log.info("room %s: recording asked for by %s", room_id, login)
        else:
            self.requested.discard(room_id)
            log.info("room %s: recording stop asked for by %s", room_id, login)
            await self.stop(room_id, ended=True)
        return True

    async def start(self, room: LiveRoom, record: bool, url: str | None) -> None:
        rec_id = None
        path = None
        if record:
            occurrence = occurrence_key(room)
            rec_id = self.store.open(room.id, occurrence, room.row.owner, room.row.summary)
            path = self._segment_path(room.id, rec_id, occurrence)
        recorder = Recorder(
            room.id,
            room.row.summary,
            path,
            url,
            lambda what, message: self._failure(room.id, what, message),
            self.settings.recording_preset,
        )
        try:
            await recorder.start()
        except asyncio.CancelledError:
            # The backend stops while this recorder starts: it is stopped like any other (its
            # file closed and listed), else its process would outlive the backend's.
            self._register(room, recorder, rec_id, path)
            await self.stop(room.id, ended=False)
            raise
        except Exception as e:
            log.error(
                "recording of room %s cannot start: %s: %s",
                room.id,
                type(e).__name__,
                str(e).replace(url or "\0", mask_url(url or "")),
            )
            first = room.id not in self._failed
            self._failed[room.id] = asyncio.get_running_loop().time()
            if first and rec_id is not None and path is not None:
                self._notify_failure(room.id, room.row.owner, room.row.summary, "disk", str(e))
            return
        self._failed.pop(room.id, None)
        act = self._register(room, recorder, rec_id, path)
        log.info(
            "room %s: recording%s started%s",
            room.id,
            f" to {path}" if path else " (stream only)",
            f", streaming to {mask_url(url)}" if url else "",
        )
        self.follow(act)

    def _segment_path(self, room_id: str, rec_id: int, occurrence: str) -> Path:
        """A new file for each segment, even when one starts within the second of the last."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
        folder, name = self.folder / _safe(room_id), f"{rec_id}-{_safe(occurrence)}-{stamp}"
        path, n = folder / f"{name}.mp4", 1
        while path.exists():
            n += 1
            path = folder / f"{name}.{n}.mp4"
        return path

    def _register(
        self, room: LiveRoom, recorder: Recorder, rec_id: int | None, path: Path | None
    ) -> Active:
        seg_id = None
        if rec_id is not None and path is not None:
            seg_id = self.store.add_segment(rec_id, path)
        act = self.active[room.id] = Active(room, recorder, rec_id, seg_id)
        return act

    async def stop(self, room_id: str, ended: bool) -> None:
        act = self.active.pop(room_id, None)
        if act is None:
            return
        if ended:
            self.requested.discard(room_id)
        for pid in act.told:
            p = act.room.participants.get(pid)
            if p is not None:
                self._tell(p, False)
        # A task of its own, which shutdown() waits for: cancelling this pass (the backend
        # stopping) must neither leave the recorder running nor its segment unrecorded.
        task = asyncio.get_running_loop().create_task(self._close(act, ended))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        await asyncio.shield(task)

    async def _close(self, act: Active, ended: bool) -> None:
        await act.recorder.stop()
        # Logged only now: "recording stopped" means that nothing writes the file any more.
        stats, path = act.recorder.stats, act.recorder.file_path
        if path is None:
            what = ""
        elif not path.exists():
            what = f"; nothing was written to {path}"  # stopped before its first frame
        elif act.recorder.finished:
            what = f"; file {path} closed"
        else:
            what = f"; file {path} kept as written"  # the recorder had to be killed
        log.info(
            "room %s: recording stopped (%d frames, %d late, %.1f s of CPU, %d bytes)%s",
            act.room.id,
            stats.frames,
            stats.late_frames,
            stats.cpu_seconds,
            act.recorder.size,
            what,
        )
        if act.segment_id is not None:
            self.store.end_segment(act.segment_id, act.recorder.size)
        if act.recording_id is None or not ended or self.stopping:
            return
        self.store.finish(act.recording_id)
        if self.store.mark_notified(act.recording_id):
            title = act.room.row.summary or act.room.id
            self._mail_done(act.recording_id, act.room.row.owner, title)

    def late_mails(self) -> None:
        """Recordings a restart ended (nobody came back): their organizer is told too."""
        horizon = dt.datetime.now(dt.UTC) - LATE_MAIL_AFTER
        for rec in self.store.all():
            if rec.state != "done" or rec.notified or rec.room_id in self.active:
                continue
            if parse_stamp(rec.last_activity) > horizon:
                continue
            if self.store.mark_notified(rec.id) and rec.size > 0:
                self._mail_done(rec.id, rec.owner, rec.summary or rec.room_id)

    async def shutdown(self) -> None:
        self.stopping = True
        if self._closing:  # stops that the cancelled pass had begun
            await asyncio.gather(*self._closing, return_exceptions=True)
        for room_id in list(self.active):
            await self.stop(room_id, ended=False)
        if self._mails:
            await asyncio.gather(*self._mails, return_exceptions=True)

    # mails -----------------------------------------------------------------
    def _text(self) -> dict[str, str]:
        return _TEXT.get(self.settings.language, _TEXT["fr"])

    def _send(self, owner: str, subject: str, body: str) -> None:
        account = self.accounts.get(owner)
        if account is None or not account.email:
            log.warning("no e-mail address for %s: notice not sent", owner)
            return

        async def go() -> None:
            try:
                await send_notice(self.settings, account.email, subject, body)
            except Exception as e:  # SMTP down: logged, the recording is listed anyway
                log.warning("notice to %s failed: %s", owner, e)

        self._spawn(go())

    def _mail_done(self, rec_id: int, owner: str, title: str) -> None:
        t = self._text()
        url = f"{self.settings.public_url}/recordings/{rec_id}"
        body = t["done_body"].format(title=title, url=url, days=self.settings.recording_days)
        self._send(owner, t["done_subject"].format(title=title), body)

    def _failure(self, room_id: str, what: str, message: str) -> None:
        act = self.active.get(room_id)
        if act is None or what in act.notices:
            return
        act.notices.add(what)
        self._notify_failure(room_id, act.room.row.owner, act.room.row.summary, what, message)

    def _notify_failure(self, room_id: str, owner: str, title: str, what: str, detail: str) -> None:
        t = self._text()
        title = title or room_id
        act = self.active.get(room_id)
        url = act.recorder.stream_url if act else None
        target = mask_url(url) if url else ""
        body = t[what].format(title=title, detail=detail, target=target)
        self._send(owner, t["fail_subject"].format(title=title), body)

    # retention ---------------------------------------------------------------
    def purge(self) -> int:
        gone = expired(self.store.all(), dt.datetime.now(dt.UTC), self.settings.recording_days)
        for rec in gone:
            with contextlib.suppress(OSError):
                self.store.delete(rec.id)
            log.info(
                "recording %d of room %s deleted (older than %d days)",
                rec.id,
                rec.room_id,
                self.settings.recording_days,
            )
        return len(gone)
