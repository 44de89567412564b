"""From a calendar resource to a room: allocation, rewrite and registry rows.

Runs inside the storage call that writes the resource, in the same registry
transaction, so the file and its row never disagree after a commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from icalendar import Calendar

from ldap_sync.store import may_book
from visio_core import conference, ical, tokens
from visio_core.categories import RoomKind
from visio_core.db import Conn
from visio_core.registry import Registry, Room
from visio_core.settings import Settings

log = logging.getLogger("visio.rooms")


def owner_of(collection_path: str) -> str:
    """The principal a collection belongs to: its first path segment."""
    return collection_path.strip("/").split("/", 1)[0]


def meeting_options(cal: Calendar, settings: Settings) -> dict[str, object]:
    main = conference.master(cal)
    if main is None:
        return {}
    record = str(main.get("X-VISIO-RECORD", "")).strip().upper() == "TRUE"
    record = record or settings.rules.wants_recording(conference.categories_of(main))
    options: dict[str, object] = {"record": record}
    stream = str(main.get("X-VISIO-STREAM-URL", "")).strip()
    if stream:
        options["stream_url"] = stream
    return options


@dataclass(frozen=True)
class RoomDecision:
    spec: conference.ConferenceSpec | None  # None: not a room (any more)
    existing: tuple[str, str] | None  # (room id, number) the registry had for this event
    touched: bool = False  # whether the calendar was changed (a room written or removed)


class RoomRewriter:
    def __init__(self, settings: Settings, registry: Registry, key: bytes) -> None:
        self.settings = settings
        self.registry = registry
        self.key = key

    def _allocate_number(self, conn: Conn) -> str:
        for _ in range(100):
            number = tokens.new_room_number()
            if not self.registry.number_taken(conn, number):
                return number
        raise RuntimeError("no free room number found; the number space is exhausted")

    def spec_for(
        self, room_id: str, number: str, kind: RoomKind, owner: str = "", uid: str = ""
    ) -> conference.ConferenceSpec:
        token = tokens.room_token(self.key, room_id)
        return conference.ConferenceSpec(
            room_id=room_id,
            room_number=number,
            kind=kind,
            join_url=self.settings.join_prefix + token,
            join_prefix=self.settings.join_prefix,
            language=self.settings.language,
            dialin_number=self.settings.dialin_number or None,
            claim=tokens.room_claim(self.key, room_id, owner, uid) if owner else "",
        )

    @staticmethod
    def existing(conn: Conn, owner: str, uid: str) -> tuple[str, str] | None:
        row = conn.execute(
            "SELECT room_id, room_number FROM rooms WHERE owner = ? AND uid = ?", (owner, uid)
        ).fetchone()
        return (row["room_id"], row["room_number"]) if row else None

    def apply(self, conn: Conn, collection_path: str, cal: Calendar) -> RoomDecision:
        """Write the room into `cal` (or strip it when the category is gone).

        Only reads the registry: `record` writes what was decided, so a decision
        can be drafted before Radicale's write lock and checked again under it.
        """
        owner = owner_of(collection_path)
        uid = ical.uid_of(cal)
        kind = conference.room_kind(cal, self.settings.rules) if uid else None
        existing = self.existing(conn, owner, uid)
        if kind is not None and existing is None and not may_book(self.registry.db, owner):
            # Outside the directory's booking group: the event is kept, with no room.
            log.info("%s may not book: %s stays a plain event", owner, uid)
            kind = None
        if kind is None:
            removed = conference.remove_room(cal, self.settings.join_prefix)
            return RoomDecision(None, existing, touched=removed)
        room_id, number = existing or (tokens.new_room_id(), self._allocate_number(conn))
        spec = self.spec_for(room_id, number, kind, owner, uid)
        conference.apply_room(cal, spec)
        return RoomDecision(spec, existing, touched=True)

    def still_holds(
        self, conn: Conn, collection_path: str, uid: str, decision: RoomDecision
    ) -> bool:
        """Whether a decision drafted earlier is still right (nothing changed meanwhile)."""
        if self.existing(conn, owner_of(collection_path), uid) != decision.existing:
            return False
        spec = decision.spec
        return (
            spec is None
            or decision.existing is not None
            or not (
                self.registry.number_taken(conn, spec.room_number)
                or conn.execute("SELECT 1 FROM rooms WHERE room_id = ?", (spec.room_id,)).fetchone()
            )
        )

    def record(
        self,
        conn: Conn,
        collection_path: str,
        href: str,
        cal: Calendar,
        text: str,
        decision: RoomDecision,
    ) -> Room | None:
        """The registry row of the stored event (the join token blanked out), or the
        room retired when the category is gone."""
        owner, uid = owner_of(collection_path), ical.uid_of(cal)
        spec = decision.spec
        if spec is None:
            if decision.existing and Registry.retire(conn, owner, uid):
                log.info("room of %s/%s retired (category removed)", owner, uid)
            return None
        if decision.existing is None:
            log.info("room %s (%s) created for %s/%s", spec.room_id, spec.kind.value, owner, uid)
        main = conference.master(cal)
        token = spec.join_url.rsplit("/", 1)[1]
        room = Room(
            room_id=spec.room_id,
            uid=ical.uid_of(cal),
            owner=owner_of(collection_path),
            calendar_path=collection_path.strip("/"),
            href=href,
            kind=spec.kind,
            token_hash=tokens.hash_token(token),
            room_number=spec.room_number,
            summary=str(main.get("SUMMARY", "")) if main is not None else "",
            event=ical.unfold(text).replace(token, ""),
            options=meeting_options(cal, self.settings),
        )
        Registry.upsert(conn, room)
        return room
