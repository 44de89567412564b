"""The room registry in a real database: SQLite (tmp_path) and PostgreSQL."""

from __future__ import annotations

import dataclasses

import pytest

from visio_core.categories import RoomKind
from visio_core.db import IntegrityError
from visio_core.registry import Registry, Room


@pytest.fixture
def registry(database):
    return Registry(database)


def make_room(n: int, owner: str = "alice", path: str = "alice/calendar", **changes) -> Room:
    room = Room(
        room_id=f"room-{n}",
        uid=f"uid-{n}@example.org",
        owner=owner,
        calendar_path=path,
        href=f"uid-{n}.ics",
        kind=RoomKind.VIDEO,
        token_hash=f"{n:064x}",
        room_number=str(100_000_000 + n),
        summary=f"Réunion {n}",
        event="BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
        options={"record": n % 2 == 0},
    )
    return dataclasses.replace(room, **changes)


def store(registry, *rooms):
    with registry.db.transaction() as conn:
        for room in rooms:
            registry.upsert(conn, room)


def ids(registry):
    return sorted(r.room_id for r in registry.all())


def test_upsert_and_lookups(registry):
    room = make_room(1, kind=RoomKind.AUDIO, options={"record": True, "stream": False})
    store(registry, room, make_room(2))
    assert registry.by_owner_uid("alice", "uid-1@example.org") == room
    assert registry.by_token_hash(room.token_hash) == room
    assert registry.by_number(room.room_number) == room
    assert registry.by_id("room-1") == room
    assert registry.by_id("room-1").kind is RoomKind.AUDIO
    assert registry.by_id("room-1").options == {"record": True, "stream": False}


def test_lookups_miss(registry):
    store(registry, make_room(1))
    assert registry.by_owner_uid("bob", "uid-1@example.org") is None
    assert registry.by_owner_uid("alice", "uid-9@example.org") is None
    assert registry.by_token_hash("0" * 63 + "2") is None
    assert registry.by_number("100000002") is None
    assert registry.by_id("room-2") is None


def test_upsert_updates_the_same_room(registry):
    store(registry, make_room(1))
    changed = make_room(1, summary="Nouveau titre", kind=RoomKind.AUDIO, options={})
    store(registry, changed)
    assert registry.all() == [changed]


def test_same_uid_for_two_owners(registry):
    a = make_room(1, owner="alice")
    b = make_room(2, owner="bob", path="bob/calendar", uid=a.uid)
    store(registry, a, b)
    assert registry.by_owner_uid("alice", a.uid) == a
    assert registry.by_owner_uid("bob", a.uid) == b


def test_room_number_is_unique(registry):
    store(registry, make_room(1))
    with pytest.raises(IntegrityError):
        store(registry, make_room(2, room_number=make_room(1).room_number))
    assert ids(registry) == ["room-1"]  # the failed transaction was rolled back


def test_token_hash_is_unique(registry):
    store(registry, make_room(1))
    with pytest.raises(IntegrityError):
        store(registry, make_room(2, token_hash=make_room(1).token_hash))


def test_one_room_per_owner_and_uid(registry):
    store(registry, make_room(1))
    with pytest.raises(IntegrityError):
        store(registry, make_room(2, uid=make_room(1).uid))


def test_number_taken(registry):
    store(registry, make_room(1))
    with registry.db.reading() as conn:
        assert registry.number_taken(conn, "100000001")
        assert not registry.number_taken(conn, "100000002")


def test_kind_is_checked_by_the_database(registry):
    with pytest.raises(IntegrityError), registry.db.transaction() as conn:
        conn.execute(
            "INSERT INTO rooms (room_id, uid, owner, calendar_path, href, kind, token_hash,"
            " room_number, event) VALUES ('x', 'u', 'o', 'p', 'h', 'phone', 't', '1', '')"
        )


def test_retire(registry):
    store(registry, make_room(1), make_room(2))
    with registry.db.transaction() as conn:
        assert registry.retire(conn, "alice", "uid-1@example.org") is True
        assert registry.retire(conn, "alice", "uid-1@example.org") is False
        assert registry.retire(conn, "bob", "uid-2@example.org") is False
    assert ids(registry) == ["room-2"]
    assert registry.by_number("100000001") is None


def test_retired_number_can_be_reused(registry):
    store(registry, make_room(1))
    with registry.db.transaction() as conn:
        registry.retire(conn, "alice", "uid-1@example.org")
    store(registry, make_room(2, room_number="100000001"))
    assert registry.by_number("100000001").room_id == "room-2"


def test_retire_under_a_calendar(registry):
    store(
        registry,
        make_room(1, path="alice/calendar"),
        make_room(2, path="alice/calendar"),
        make_room(3, path="alice/work"),
        make_room(4, owner="bob", path="bob/calendar"),
    )
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "/alice/calendar/") == 2
    assert ids(registry) == ["room-3", "room-4"]


def test_retire_under_a_principal(registry):
    store(
        registry,
        make_room(1, path="alice/calendar"),
        make_room(2, path="alice/work"),
        make_room(3, owner="alice2", path="alice2/calendar"),
        make_room(4, owner="bob", path="bob/calendar"),
    )
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice") == 2
    assert ids(registry) == ["room-3", "room-4"]


def test_retire_under_keeps_uids_still_stored(registry):
    store(
        registry,
        make_room(1, path="alice/calendar"),
        make_room(2, path="alice/calendar"),
        make_room(3, path="alice/calendar"),
        make_room(4, path="alice/other"),
    )
    keep = {"uid-1@example.org", "uid-3@example.org", "uid-4@example.org"}
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice/calendar", keep_uids=keep) == 1
    assert ids(registry) == ["room-1", "room-3", "room-4"]


def test_keep_uids_apply_to_the_collection_itself_only(registry):
    store(registry, make_room(1, path="alice"), make_room(2, path="alice/calendar"))
    keep = {"uid-1@example.org", "uid-2@example.org"}
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice", keep_uids=keep) == 1
    assert ids(registry) == ["room-1"]


def test_retire_under_treats_like_wildcards_literally(registry):
    store(
        registry,
        make_room(1, path="alice/my_cal"),
        make_room(2, path="alice/myxcal/sub"),
        make_room(3, path="alice/100%/sub"),
        make_room(4, path="alice/100x/sub"),
    )
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice/my_cal") == 1
        assert registry.retire_under(conn, "alice/100%") == 1
    assert ids(registry) == ["room-2", "room-4"]


def test_retire_under_is_case_sensitive(registry):
    store(registry, make_room(1, owner="Alice", path="Alice/calendar"))
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice") == 0
    assert ids(registry) == ["room-1"]


def test_relocate(registry):
    store(registry, make_room(1), make_room(2))
    with registry.db.transaction() as conn:
        registry.relocate(conn, "alice", "uid-1@example.org", "/alice/work/", "moved.ics")
    moved = registry.by_id("room-1")
    assert moved.calendar_path == "alice/work"
    assert moved.href == "moved.ics"
    assert moved.token_hash == make_room(1).token_hash  # the link does not change
    assert registry.by_id("room-2") == make_room(2)
    with registry.db.transaction() as conn:
        assert registry.retire_under(conn, "alice/work") == 1
    assert ids(registry) == ["room-2"]


def test_relocate_unknown_room_changes_nothing(registry):
    store(registry, make_room(1))
    with registry.db.transaction() as conn:
        registry.relocate(conn, "bob", "uid-1@example.org", "bob/x", "x.ics")
    assert registry.all() == [make_room(1)]


def test_replace_all(registry):
    store(registry, make_room(1), make_room(2))
    rebuilt = [make_room(3), make_room(2, summary="Renommée")]
    assert registry.replace_all(iter(rebuilt)) == 2
    assert ids(registry) == ["room-2", "room-3"]
    assert registry.by_id("room-2").summary == "Renommée"
    assert registry.replace_all([]) == 0
    assert registry.all() == []


def test_replace_all_is_all_or_nothing(registry):
    store(registry, make_room(1))
    clash = [make_room(2), make_room(3, room_number=make_room(2).room_number)]
    with pytest.raises(IntegrityError):
        registry.replace_all(clash)
    assert ids(registry) == ["room-1"]


def test_all_is_ordered_by_owner_then_summary(registry):
    store(
        registry,
        make_room(1, owner="bob", path="bob/c", summary="B"),
        make_room(2, owner="alice", summary="Z"),
        make_room(3, owner="alice", summary="A"),
    )
    assert [r.room_id for r in registry.all()] == ["room-3", "room-2", "room-1"]
