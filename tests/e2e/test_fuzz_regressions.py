"""Inputs that bench/fuzz_caldav.py (or writing its checks) found to break the server.

Each test puts the smallest body that showed the bug to the real stack.
"""

from __future__ import annotations

import sqlite3

import requests

from tests.e2e.conftest import new_user
from tests.support import ics
from tests.support.stack import Stack


def rooms(stack: Stack) -> set[tuple[str, ...]]:
    conn = sqlite3.connect(f"file:{stack.data_dir / 'visio.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT room_id, uid, owner, calendar_path, href, room_number, token_hash FROM rooms"
        ).fetchall()
    finally:
        conn.close()
    return {tuple(str(v) for v in row) for row in rows}


def test_rebuild_leaves_the_room_with_the_organizer_not_an_attendee(stack: Stack) -> None:
    """The copy delivered to a local attendee carries X-VISIO-ROOM; `rooms rebuild` gave
    the room to whichever calendar it read first ("a…" before "z…"), so the organizer's
    next save made a new room and every link sent so far died."""
    organizer = new_user(stack)
    attendee = new_user(stack)
    # The attendee's login sorts first: the order that showed the bug.
    first, last = sorted([organizer, attendee], key=lambda u: u.login)
    organizer, attendee = last, first
    uid = f"meeting-{organizer.login}"
    href = f"{uid}.ics"  # the name a delivered copy gets too
    body = ics.event(
        uid=uid,
        extra=f"ORGANIZER:mailto:{organizer.login}@example.org\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:{attendee.login}@example.org"
    )
    assert organizer.put(href, body).status_code == 201
    copy = attendee.get(href)
    assert copy.status_code == 200 and "X-VISIO-ROOM:" in copy.text
    before = rooms(stack)
    link = ics.join_link(organizer.get(href).text)

    stack.visio("rooms", "rebuild")

    assert rooms(stack) == before
    assert any(row[2] == organizer.login for row in before)
    # The organizer edits the meeting: same room, same link.
    edited = organizer.get(href).text.replace("Comité technique", "Comité (déplacé)")
    assert organizer.put(href, edited).status_code in (201, 204)
    assert ics.join_link(organizer.get(href).text) == link
    assert requests.get(link, timeout=10).status_code == 200

