"""RoomManager's watch pass: which live rooms it lets go, and when."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.support.database import open_db
from tests.support.ics import event
from visio_core.categories import RoomKind
from visio_core.registry import Registry, Room
from visio_rooms import rooms
from visio_rooms.rooms import RoomManager


def registered(tmp_path: Path) -> tuple[Registry, Room]:
    registry = Registry(open_db(tmp_path / "visio.sqlite3"))
    row = Room(
        room_id="r1",
        uid="u1",
        owner="alice",
        calendar_path="alice/calendar",
        href="u1.ics",
        kind=RoomKind.VIDEO,
        token_hash="h" * 64,
        room_number="123456789",
        summary="Point",
        event=event(uid="u1"),
    )
    with registry.db.transaction() as conn:
        Registry.upsert(conn, row)
    return registry, row


def test_a_room_just_opened_for_an_entrant_is_kept_until_they_are_in(tmp_path: Path) -> None:
    registry, row = registered(tmp_path)
    manager = RoomManager(registry)

    async def scenario() -> None:
        room = manager.open(row, None, None)
        await manager.check()  # the entrant is still sending "joined": no one added yet
        assert manager.get("r1") is room
        assert manager.open(row, None, None) is room  # a second entrant: the same room
        room.touched -= rooms.ENTRY_GRACE + 1  # long empty since
        await manager.check()
        assert manager.get("r1") is None

    asyncio.run(scenario())


def test_a_deleted_event_closes_its_room_at_once(tmp_path: Path) -> None:
    registry, row = registered(tmp_path)
    manager = RoomManager(registry)

    async def scenario() -> None:
        room = manager.open(row, None, None)
        with registry.db.transaction() as conn:
            Registry.retire(conn, "alice", "u1")
        await manager.check()
        assert room.closed == "deleted" and manager.get("r1") is None

    asyncio.run(scenario())
