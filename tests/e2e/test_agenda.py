"""The agenda follows every way an event is written, on the real CalDAV server."""

from __future__ import annotations

import datetime as dt
import uuid
from zoneinfo import ZoneInfo

from tests.e2e.conftest import DavUser, new_user
from tests.support.ics import event
from tests.support.stack import Stack, wait_for
from visio_core.agenda import Agenda

PARIS = ZoneInfo("Europe/Paris")
DECEMBER = (
    dt.datetime(2026, 12, 1, tzinfo=PARIS),
    dt.datetime(2027, 1, 1, tzinfo=PARIS),
)


def shown(stack: Stack, calendar_url: str) -> list[tuple[str, str]] | None:
    """(file name, title) of December's occurrences, as the portal reads them."""
    path = calendar_url.removeprefix(stack.caldav_url)
    with stack.db() as db:
        found = Agenda(db).between(path, *DECEMBER)
    if found is None:
        return None
    rows, _ = found
    return sorted((r[0], r[9]) for r in rows)


def test_put_edit_and_delete_are_seen_at_once(stack: Stack, user: DavUser) -> None:
    assert shown(stack, user.calendar) == []
    assert user.put("a.ics", event(uid="a", summary="Premier")).status_code == 201
    assert shown(stack, user.calendar) == [("a.ics", "Premier")]
    assert user.put("a.ics", event(uid="a", summary="Renommé")).status_code == 204
    series = event(uid="s", summary="Série", extra="RRULE:FREQ=WEEKLY;COUNT=3")
    assert user.put("s.ics", series).status_code == 201
    assert shown(stack, user.calendar) == [("a.ics", "Renommé")] + [("s.ics", "Série")] * 3
    assert user.session.delete(user.url("a.ics"), timeout=30).status_code in (200, 204)
    assert shown(stack, user.calendar) == [("s.ics", "Série")] * 3
    # A refused PUT leaves nothing behind.
    assert user.put("bad.ics", "BEGIN:VCALENDAR\r\nnot ical\r\n").status_code == 400
    assert ("bad.ics", "") not in (shown(stack, user.calendar) or [])


def test_move_import_and_collection_delete(stack: Stack, user: DavUser) -> None:
    assert user.put("m.ics", event(uid="m", summary="Déplacé")).status_code == 201
    other = user.make_calendar()
    r = user.session.request(
        "MOVE", user.url("m.ics"), headers={"Destination": other + "n.ics"}, timeout=30
    )
    assert r.status_code in (201, 204), r.text
    assert shown(stack, user.calendar) == []
    assert shown(stack, other) == [("n.ics", "Déplacé")]
    # A whole-calendar PUT (import) replaces what the calendar held.
    first, second = (event(uid=f"i{n}", summary=f"Importé {n}") for n in (1, 2))
    vevent = second[second.index("BEGIN:VEVENT") : second.index("END:VCALENDAR")]
    body = first.replace("END:VCALENDAR", vevent + "END:VCALENDAR")
    r = user.session.put(
        other, data=body.encode(), headers={"Content-Type": "text/calendar"}, timeout=30
    )
    assert r.status_code in (201, 204), r.text
    assert [t for _, t in shown(stack, other) or []] == ["Importé 1", "Importé 2"]
    assert user.session.delete(other, timeout=30).status_code in (200, 204)
    assert shown(stack, other) is None


def test_an_invitation_delivered_to_an_attendee_is_in_their_agenda(stack: Stack) -> None:
    alice, bob = new_user(stack), new_user(stack)
    alice_at, bob_at = f"{alice.login}@example.org", f"{bob.login}@example.org"
    body = event(
        uid="inv-" + uuid.uuid4().hex,
        summary="Invitation",
        extra=(
            f"ORGANIZER:mailto:{alice_at}\n"
            f"ATTENDEE;PARTSTAT=ACCEPTED:mailto:{alice_at}\n"
            f"ATTENDEE;RSVP=TRUE:mailto:{bob_at}"
        ),
    )
    assert alice.put("inv.ics", body).status_code == 201
    bob_view = shown(stack, bob.calendar) or []
    assert [t for _, t in bob_view] == ["Invitation"]
    path = bob.calendar.removeprefix(stack.caldav_url)
    with stack.db() as db:
        found = Agenda(db).between(path, *DECEMBER)
    assert found is not None
    assert {r[2] for r in found[0]} == {alice_at}  # Bob's view marks it not his


def test_at_start_old_calendars_are_indexed_and_running_out_series_extended(
    stack: Stack, user: DavUser
) -> None:
    assert user.put("old.ics", event(uid="old", summary="Ancien")).status_code == 201
    other = new_user(stack)
    series = event(uid="weekly", summary="Hebdo", extra="RRULE:FREQ=WEEKLY")
    assert other.put("weekly.ics", series).status_code == 201
    path = user.calendar.removeprefix(stack.caldav_url).strip("/")
    other_path = other.calendar.removeprefix(stack.caldav_url).strip("/")
    with stack.db() as db, db.transaction() as conn:
        # As before version 5 for one calendar; a series indexed long ago for the other.
        for table in ("agenda", "agenda_items", "agenda_calendars"):
            conn.execute(f"DELETE FROM {table} WHERE calendar_path = ?", (path,))
        conn.execute("DELETE FROM agenda WHERE calendar_path = ?", (other_path,))
        conn.execute(
            "UPDATE agenda_items SET covered_to = 0 WHERE calendar_path = ?", (other_path,)
        )
    assert shown(stack, user.calendar) is None
    assert shown(stack, other.calendar) == []  # its window ran out: the views expand it
    stack.restart()
    wait_for(lambda: shown(stack, user.calendar) is not None, what="the agenda backfill")
    assert shown(stack, user.calendar) == [("old.ics", "Ancien")]
    wait_for(lambda: shown(stack, other.calendar), what="the series extended")
    assert shown(stack, other.calendar) == [("weekly.ics", "Hebdo")] * 5  # December's Thursdays
