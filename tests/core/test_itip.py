"""iTIP planning (visio_core.itip): which messages an organizer's change sends."""

from __future__ import annotations

from icalendar import Calendar

from tests.core.conftest import build_vcalendar, build_vevent
from visio_core.ical import parse
from visio_core.itip import (
    Outgoing,
    address_of,
    attendees,
    bump_sequences,
    components,
    content,
    exdates,
    plan,
    sequence,
)

ORG = "org@example.org"
ORGANIZER_LINE = "ORGANIZER;CN=Org:mailto:Org@Example.org"
WEEKLY = "RRULE:FREQ=WEEKLY;COUNT=10"
# Second and third occurrences of the weekly series (UTC keys; Paris is UTC+1 in March).
RID_2 = "2025-03-17T09:00:00+00:00"
RID_3 = "2025-03-24T09:00:00+00:00"


def att(addr: str, *params: str) -> str:
    head = ";".join(("ATTENDEE", *params))
    return f"{head}:mailto:{addr}"


def cal(*extra: str, seq: int | None = None, start_hour: str = "10", **kw: object) -> Calendar:
    lines = [ORGANIZER_LINE]
    if seq is not None:
        lines.append(f"SEQUENCE:{seq}")
    lines.extend(extra)
    return parse(
        build_vcalendar(
            build_vevent(
                start=f";TZID=Europe/Paris:20250310T{start_hour}0000",
                end=f";TZID=Europe/Paris:20250310T{int(start_hour) + 1:02d}0000",
                extra=lines,
                **kw,  # type: ignore[arg-type]
            )
        )
    )


def series(*extra: str, seq: int = 0, overrides: tuple[str, ...] = ()) -> Calendar:
    master = build_vevent(extra=[ORGANIZER_LINE, f"SEQUENCE:{seq}", WEEKLY, *extra])
    return parse(build_vcalendar(master, *overrides))


def override(rid: str, start: str, *extra: str, seq: int = 0) -> str:
    return build_vevent(
        start=f";TZID=Europe/Paris:{start}",
        end=f";TZID=Europe/Paris:{start[:9]}{int(start[9:11]) + 1:02d}0000",
        extra=[
            f"RECURRENCE-ID;TZID=Europe/Paris:{rid}",
            ORGANIZER_LINE,
            f"SEQUENCE:{seq}",
            att("alice@example.org"),
            att("bob@example.org"),
            *extra,
        ],
    )


ALICE = att("alice@example.org", "CN=Alice", "PARTSTAT=NEEDS-ACTION")
BOB = att("Bob@Example.org", "PARTSTAT=NEEDS-ACTION")


# --- small helpers -----------------------------------------------------------------


def test_address_of_normalises_mailto_and_case() -> None:
    assert address_of("mailto:Alice@Example.ORG") == "alice@example.org"
    assert address_of("MAILTO:bob@example.org") == "bob@example.org"
    assert address_of("  carol@example.org ") == "carol@example.org"


def test_address_of_rejects_non_addresses() -> None:
    for bad in ("mailto:", "mailto:nobody", "urn:uuid:1234", "a@b@c", "mailto:a b@c.d", ""):
        assert address_of(bad) == "", bad


def test_attendees_keyed_by_normalised_address_in_order() -> None:
    ev = components(cal(ALICE, BOB, att("not-an-address")))[None]
    found = attendees(ev)
    assert list(found)[:2] == ["alice@example.org", "bob@example.org"]
    assert "mailto:not-an-address" in found  # malformed kept under its raw text


def test_components_keys_master_none_and_overrides_utc() -> None:
    c = series(overrides=(override("20250317T100000", "20250317T140000"),))
    comps = components(c)
    assert set(comps) == {None, RID_2}
    assert components(None) == {}


def test_exdates_keys() -> None:
    ev = components(series("EXDATE;TZID=Europe/Paris:20250317T100000,20250324T100000"))[None]
    assert set(exdates(ev)) == {RID_2, RID_3}


def test_sequence_defaults() -> None:
    assert sequence(None) == 0
    assert sequence(components(cal())[None]) == 0
    assert sequence(components(cal(seq=4))[None]) == 4


def test_content_ignores_dtstamp_sequence_and_attendees() -> None:
    a = components(cal(ALICE, seq=1))[None]
    b = components(cal(BOB, seq=7))[None]
    b.pop("DTSTAMP")
    b.add("DTSTAMP", b.decoded("DTSTART"))
    assert content(a) == content(b)


# --- new event -----------------------------------------------------------------------


def test_new_event_requests_every_server_scheduled_attendee() -> None:
    new = cal(
        att("org@example.org", "PARTSTAT=ACCEPTED"),
        ALICE,
        BOB,
        att("client@example.org", "SCHEDULE-AGENT=CLIENT"),
        att("none@example.org", "SCHEDULE-AGENT=NONE"),
        att("server@example.org", "SCHEDULE-AGENT=SERVER"),
        "ATTENDEE:mailto:not-an-address",
        "ATTENDEE:urn:uuid:00000000-0000-0000-0000-000000000000",
    )
    out = plan(None, new, ORG)
    assert out == [
        Outgoing(
            "REQUEST",
            None,
            0,
            ("alice@example.org", "bob@example.org", "server@example.org"),
        )
    ]


def test_new_event_without_attendees_sends_nothing() -> None:
    assert plan(None, cal(), ORG) == []
    assert plan(None, cal(att("org@example.org")), ORG) == []


def test_new_event_lowercase_schedule_agent_is_skipped() -> None:
    out = plan(None, cal(ALICE, att("c@example.org", "SCHEDULE-AGENT=client")), ORG)
    assert [o.recipients for o in out] == [("alice@example.org",)]


# --- reschedule ----------------------------------------------------------------------


def test_reschedule_requests_everyone() -> None:
    old = cal(ALICE, BOB, seq=2)
    new = cal(ALICE, BOB, seq=2, start_hour="14")
    bump_sequences(old, new)
    out = plan(old, new, ORG)
    assert out == [Outgoing("REQUEST", None, 3, ("alice@example.org", "bob@example.org"))]


def test_bump_sequences_raises_when_client_forgot() -> None:
    old = cal(ALICE, seq=2)
    new = cal(ALICE, seq=2, start_hour="14")
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 3


def test_bump_sequences_raises_when_sequence_missing() -> None:
    old = cal(ALICE, seq=5)
    new = cal(ALICE, start_hour="14")
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 6


def test_bump_sequences_keeps_client_raise() -> None:
    old = cal(ALICE, seq=2)
    new = cal(ALICE, seq=9, start_hour="14")
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 9


def test_bump_sequences_never_goes_backwards_without_change() -> None:
    old = cal(ALICE, seq=4)
    new = cal(ALICE, seq=1)
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 4


def test_bump_sequences_never_goes_backwards_with_change() -> None:
    old = cal(ALICE, seq=4)
    new = cal(ALICE, seq=1, start_hour="14")
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 5


def test_bump_sequences_new_event_untouched() -> None:
    new = cal(ALICE)
    bump_sequences(None, new)
    assert "SEQUENCE" not in components(new)[None]


def test_bump_sequences_new_override_not_below_master() -> None:
    old = series(ALICE, seq=3)
    new = series(ALICE, seq=3, overrides=(override("20250317T100000", "20250317T140000"),))
    bump_sequences(old, new)
    assert sequence(components(new)[RID_2]) == 3


def test_location_change_is_significant() -> None:
    old = cal(ALICE, "LOCATION:Salle A", seq=0)
    new = cal(ALICE, "LOCATION:Salle B", seq=0)
    bump_sequences(old, new)
    assert plan(old, new, ORG) == [Outgoing("REQUEST", None, 1, ("alice@example.org",))]


# --- PARTSTAT only -------------------------------------------------------------------


def test_partstat_only_change_sends_nothing_and_keeps_sequence() -> None:
    old = cal(ALICE, BOB, seq=2)
    new = cal(
        att("alice@example.org", "CN=Alice", "PARTSTAT=ACCEPTED"),
        att("Bob@Example.org", "PARTSTAT=DECLINED"),
        seq=2,
    )
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 2
    assert plan(old, new, ORG) == []


def test_identical_resave_sends_nothing() -> None:
    old = cal(ALICE, BOB, seq=1)
    new = cal(ALICE, BOB, seq=1)
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 1
    assert plan(old, new, ORG) == []


# --- attendees added / removed -------------------------------------------------------


def test_attendee_added_gets_request_alone() -> None:
    old = cal(ALICE, seq=1)
    new = cal(ALICE, BOB, seq=1)
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 1
    assert plan(old, new, ORG) == [Outgoing("REQUEST", None, 1, ("bob@example.org",))]


def test_attendee_removed_gets_cancel_alone() -> None:
    old = cal(ALICE, BOB, seq=1)
    new = cal(ALICE, seq=1)
    bump_sequences(old, new)
    assert plan(old, new, ORG) == [Outgoing("CANCEL", None, 1, ("bob@example.org",))]


def test_attendee_switched_to_client_scheduling_is_not_cancelled_twice() -> None:
    old = cal(ALICE, BOB, seq=1)
    new = cal(ALICE, att("bob@example.org", "SCHEDULE-AGENT=CLIENT"), seq=1)
    out = plan(old, new, ORG)
    # The server no longer schedules Bob: at most one CANCEL, never a REQUEST to him.
    assert all("bob@example.org" not in o.recipients for o in out if o.method == "REQUEST")


def test_added_and_removed_together() -> None:
    old = cal(ALICE, seq=0)
    new = cal(BOB, seq=0)
    assert plan(old, new, ORG) == [
        Outgoing("REQUEST", None, 0, ("bob@example.org",)),
        Outgoing("CANCEL", None, 0, ("alice@example.org",)),
    ]


def test_reschedule_and_removal_cancel_goes_to_removed_only() -> None:
    old = cal(ALICE, BOB, seq=0)
    new = cal(ALICE, seq=0, start_hour="15")
    bump_sequences(old, new)
    assert plan(old, new, ORG) == [
        Outgoing("REQUEST", None, 1, ("alice@example.org",)),
        Outgoing("CANCEL", None, 1, ("bob@example.org",)),
    ]


# --- recurrence: EXDATE and overrides ------------------------------------------------


def test_new_exdate_only_cancels_that_occurrence() -> None:
    old = series(ALICE, BOB, seq=1)
    new = series(ALICE, BOB, "EXDATE;TZID=Europe/Paris:20250317T100000", seq=1)
    bump_sequences(old, new)
    seq = sequence(components(new)[None])
    out = plan(old, new, ORG)
    assert out == [Outgoing("CANCEL", RID_2, seq, ("alice@example.org", "bob@example.org"))]
    assert all(o.method != "REQUEST" for o in out)
    assert seq >= 1


def test_two_new_exdates_two_cancels() -> None:
    old = series(ALICE, seq=0)
    new = series(ALICE, "EXDATE;TZID=Europe/Paris:20250317T100000,20250324T100000", seq=0)
    out = plan(old, new, ORG)
    assert sorted((o.method, o.recurrence_id) for o in out) == [
        ("CANCEL", RID_2),
        ("CANCEL", RID_3),
    ]


def test_exdate_with_other_change_is_a_whole_request() -> None:
    old = series(ALICE, "LOCATION:A", seq=0)
    new = series(ALICE, "LOCATION:B", "EXDATE;TZID=Europe/Paris:20250317T100000", seq=0)
    bump_sequences(old, new)
    assert plan(old, new, ORG) == [Outgoing("REQUEST", None, 1, ("alice@example.org",))]


def test_override_cancelled_sends_cancel_for_its_key() -> None:
    old = series(ALICE, BOB, seq=0)
    new = series(
        ALICE,
        BOB,
        seq=0,
        overrides=(override("20250317T100000", "20250317T100000", "STATUS:CANCELLED"),),
    )
    bump_sequences(old, new)
    assert plan(old, new, ORG) == [
        Outgoing("CANCEL", RID_2, 0, ("alice@example.org", "bob@example.org"))
    ]


def test_existing_override_becoming_cancelled_sends_cancel() -> None:
    old = series(ALICE, BOB, overrides=(override("20250317T100000", "20250317T100000"),))
    new = series(
        ALICE,
        BOB,
        overrides=(override("20250317T100000", "20250317T100000", "STATUS:CANCELLED"),),
    )
    bump_sequences(old, new)
    out = plan(old, new, ORG)
    assert [(o.method, o.recurrence_id) for o in out] == [("CANCEL", RID_2)]
    assert out[0].sequence == 1


def test_override_moved_sends_request_for_its_key() -> None:
    old = series(ALICE, BOB, overrides=(override("20250317T100000", "20250317T100000"),))
    new = series(ALICE, BOB, overrides=(override("20250317T100000", "20250317T150000"),))
    bump_sequences(old, new)
    assert sequence(components(new)[RID_2]) == 1
    assert sequence(components(new)[None]) == 0
    assert plan(old, new, ORG) == [
        Outgoing("REQUEST", RID_2, 1, ("alice@example.org", "bob@example.org"))
    ]


def test_new_override_moved_sends_request_for_its_key() -> None:
    old = series(ALICE, BOB)
    new = series(ALICE, BOB, overrides=(override("20250317T100000", "20250318T090000"),))
    out = plan(old, new, ORG)
    assert [(o.method, o.recurrence_id) for o in out] == [("REQUEST", RID_2)]


def test_unchanged_override_sends_nothing() -> None:
    ov = override("20250317T100000", "20250317T150000")
    assert plan(series(ALICE, overrides=(ov,)), series(ALICE, overrides=(ov,)), ORG) == []


# --- deletion ------------------------------------------------------------------------


def test_deletion_cancels_everyone_with_next_sequence() -> None:
    old = cal(
        ALICE, BOB, att("org@example.org"), att("c@example.org", "SCHEDULE-AGENT=CLIENT"), seq=3
    )
    assert plan(old, None, ORG) == [
        Outgoing("CANCEL", None, 4, ("alice@example.org", "bob@example.org"))
    ]


def test_deletion_includes_override_only_attendees() -> None:
    ov = override("20250317T100000", "20250317T150000", att("carol@example.org"))
    old = series(ALICE, seq=2, overrides=(ov,))
    out = plan(old, None, ORG)
    assert len(out) == 1
    assert out[0].method == "CANCEL" and out[0].recurrence_id is None
    assert out[0].sequence == 3
    assert set(out[0].recipients) == {
        "alice@example.org",
        "bob@example.org",
        "carol@example.org",
    }


def test_deletion_without_attendees_or_old_sends_nothing() -> None:
    assert plan(cal(seq=1), None, ORG) == []
    assert plan(None, None, ORG) == []


# --- findings ------------------------------------------------------------------------


def test_attendee_added_to_one_override_gets_request_for_that_key() -> None:
    old = series(ALICE, overrides=(override("20250317T100000", "20250317T150000"),))
    new = series(
        ALICE,
        overrides=(override("20250317T100000", "20250317T150000", att("carol@example.org")),),
    )
    out = plan(old, new, ORG)
    assert Outgoing("REQUEST", RID_2, 0, ("carol@example.org",)) in out


def test_attendee_removed_from_one_override_gets_cancel_for_that_key() -> None:
    old = series(
        ALICE,
        overrides=(override("20250317T100000", "20250317T150000", att("carol@example.org")),),
    )
    new = series(ALICE, overrides=(override("20250317T100000", "20250317T150000"),))
    out = plan(old, new, ORG)
    assert [o for o in out if "carol@example.org" in o.recipients] == [
        Outgoing("CANCEL", RID_2, 0, ("carol@example.org",))
    ]


def test_summary_only_change_raises_sequence_so_outlook_applies_it() -> None:
    """Deliberate (visio_core/itip.py): every change sent to attendees raises SEQUENCE,
    a title fix included; Outlook ignores updates whose SEQUENCE did not rise."""
    old = cal(ALICE, seq=2)
    new = cal(ALICE, seq=2, summary="Nouveau titre")
    bump_sequences(old, new)
    assert sequence(components(new)[None]) == 3


def test_summary_only_change_still_updates_attendees() -> None:
    old = cal(ALICE, seq=2)
    new = cal(ALICE, seq=2, summary="Nouveau titre")
    out = plan(old, new, ORG)
    assert [(o.method, o.recurrence_id, o.recipients) for o in out] == [
        ("REQUEST", None, ("alice@example.org",))
    ]


def test_master_status_cancelled_sends_cancel() -> None:
    old = cal(ALICE, BOB, seq=1)
    new = cal(ALICE, BOB, "STATUS:CANCELLED", seq=1)
    bump_sequences(old, new)
    assert [o.method for o in plan(old, new, ORG)] == ["CANCEL"]
