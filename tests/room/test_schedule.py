"""When a room takes people in, from the stored event."""

from __future__ import annotations

import datetime as dt

from tests.support import ics
from visio_core.schedule import invited_addresses, lobby_enabled, occurrence_alive, window

EARLY, GRACE = dt.timedelta(minutes=15), dt.timedelta(minutes=10)
PARIS_10H = dt.datetime(2026, 12, 3, 9, 0, tzinfo=dt.UTC)  # 10:00 in Paris


def test_waiting_then_open_from_early_join_until_end_plus_grace() -> None:
    ev = ics.event()  # 3 Dec 2026 10:00-11:30 Europe/Paris
    w = window(ev, PARIS_10H - dt.timedelta(minutes=20), EARLY, GRACE)
    assert w.state == "waiting" and w.opens_at == PARIS_10H - EARLY
    assert window(ev, PARIS_10H - dt.timedelta(minutes=14), EARLY, GRACE).state == "open"
    after_end = PARIS_10H + dt.timedelta(minutes=95)
    assert window(ev, after_end, EARLY, GRACE).state == "open"  # inside the grace period
    assert window(ev, after_end + GRACE, EARLY, GRACE).state == "ended"


def test_weekly_meeting_waits_for_the_next_session_and_skips_exdates() -> None:
    ev = ics.event(extra="RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID=Europe/Paris:20261210T100000")
    w = window(ev, PARIS_10H + dt.timedelta(hours=3), EARLY, GRACE)
    assert w.state == "waiting"
    assert w.start == dt.datetime(2026, 12, 17, 9, 0, tzinfo=dt.UTC)


def test_cancelled_occurrence_is_no_longer_alive() -> None:
    ev = ics.event(extra="RRULE:FREQ=WEEKLY;COUNT=3")
    w = window(ev, PARIS_10H, EARLY, GRACE)
    assert w.occurrence == "20261203T090000Z"
    assert occurrence_alive(ev, w.occurrence, PARIS_10H)
    cancelled = ics.event(
        extra="RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID=Europe/Paris:20261203T100000"
    )
    assert not occurrence_alive(cancelled, w.occurrence, PARIS_10H)


def test_one_off_meeting_moved_while_held_keeps_its_people() -> None:
    ev = ics.event()
    w = window(ev, PARIS_10H, EARLY, GRACE)
    assert w.occurrence == ""
    moved = ics.event(start="20261204T100000", end="20261204T113000")
    assert occurrence_alive(moved, "", PARIS_10H)
    assert not occurrence_alive(ics.event(extra="STATUS:CANCELLED"), "", PARIS_10H)


def test_lobby_option_and_invited_addresses() -> None:
    assert lobby_enabled(ics.event(), {})
    assert not lobby_enabled(ics.event(extra="X-VISIO-LOBBY:FALSE"), {})
    assert not lobby_enabled(ics.event(), {"lobby": False})
    ev = ics.event(
        extra="ORGANIZER:mailto:Org@Example.org\nATTENDEE;CN=A:mailto:a@example.org\n"
        "ATTENDEE:mailto:b@example.org"
    )
    assert invited_addresses(ev) == {"org@example.org", "a@example.org", "b@example.org"}
