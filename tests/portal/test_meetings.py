"""The plan form's rules and the iCalendar it writes (pure functions, no server)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import icalendar

from conference_backend.portal import meetings, occurrences
from visio_core.accounts import Account

PARIS = ZoneInfo("Europe/Paris")
ME = Account("alice", "alice@example.org", "Alice Martin", "DSI", "local", False)


def weekly() -> meetings.Form:
    return meetings.Form(
        subject="Point",
        date="2026-12-02",  # a Wednesday: the series starts on the first ticked day
        start="10:00",
        duration="60",
        periodic=True,
        days=["MO", "TH"],
        repeat_until="2026-12-31",
        invitees="Bob@Example.org, alice@example.org; carol@example.org",
        record=True,
        streaming=True,
        stream_url="rtmp://live.example.org/app/secret-key",
    )


def test_required_fields_and_bad_values_are_named() -> None:
    form = meetings.Form(subject="", date="31/12", start="", duration="2", invitees="bob@")
    draft, errors = meetings.validate(form, PARIS)
    assert draft is None
    assert {k: v[0] for k, v in errors.items()} == {
        "subject": "err_subject",
        "date": "err_date",
        "start": "err_start",
        "duration": "err_duration",
        "invitees": "err_invitees",
    }
    periodic = meetings.Form(subject="x", date="2026-12-02", start="10:00", periodic=True)
    assert set(meetings.validate(periodic, PARIS)[1]) == {"days", "repeat_until"}


def test_end_time_alone_gives_the_duration() -> None:
    form = meetings.Form(subject="x", date="2026-12-02", start="10:00", duration="", end="11:30")
    draft, _ = meetings.validate(form, PARIS)
    assert draft is not None and draft.duration == dt.timedelta(minutes=90)


def test_a_weekly_meeting_is_one_event_with_an_rrule() -> None:
    draft, errors = meetings.validate(weekly(), PARIS)
    assert draft is not None, errors
    cal = meetings.new_event(draft, ME)
    (ev,) = icalendar.Calendar.from_ical(meetings.serialize(cal)).walk("VEVENT")  # as stored
    assert ev["DTSTART"].dt == dt.datetime(2026, 12, 3, 10, tzinfo=PARIS)
    rule = ev["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and rule["BYDAY"] == ["MO", "TH"]
    assert rule["UNTIL"] == [dt.datetime(2026, 12, 31, 22, 59, 59, tzinfo=dt.UTC)]
    # The organizer is not listed as an attendee: the server invites them anyway.
    assert sorted(str(a) for a in ev["ATTENDEE"]) == [
        "mailto:bob@example.org",
        "mailto:carol@example.org",
    ]
    assert str(ev["X-VISIO-RECORD"]) == "TRUE"
    assert str(ev["X-VISIO-STREAM-URL"]) == "rtmp://live.example.org/app/secret-key"
    assert "VTIMEZONE" in meetings.serialize(cal)


def test_occurrence_save_series_save_and_delete() -> None:
    draft, _ = meetings.validate(weekly(), PARIS)
    assert draft is not None
    cal = meetings.new_event(draft, ME)
    thursday = dt.datetime(2026, 12, 10, 10, tzinfo=PARIS)
    moved, _ = meetings.validate(
        meetings.Form(subject="Déplacé", date="2026-12-11", start="14:00", duration="30"), PARIS
    )
    assert moved is not None
    cal = meetings.save_occurrence(cal, thursday, moved, ME)
    found = occurrences.occurrence_of(cal, thursday.astimezone(dt.UTC))
    assert str(found["SUMMARY"]) == "Déplacé"
    assert found["DTSTART"].dt == dt.datetime(2026, 12, 11, 14, tzinfo=PARIS)

    # The series moves one hour earlier: the override's RECURRENCE-ID follows.
    later, _ = meetings.validate(
        meetings.Form(subject="Point", date="2026-12-07", start="09:00", duration="60"), PARIS
    )
    assert later is not None
    monday = dt.datetime(2026, 12, 7, 10, tzinfo=PARIS)
    cal, shift = meetings.save_series(cal, monday, later, ME)
    assert shift == dt.timedelta(hours=-1)
    rids = [e["RECURRENCE-ID"].dt for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert rids == [thursday - dt.timedelta(hours=1)]

    cal = meetings.delete_occurrence(cal, rids[0])
    assert [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e] == []
    master = meetings._master(cal)
    assert [d.dt for d in master["EXDATE"].dts] == [rids[0]]


def test_the_edit_form_shows_the_occurrence_without_the_server_block() -> None:
    draft, _ = meetings.validate(weekly(), PARIS)
    assert draft is not None
    cal = meetings.new_event(draft, ME)
    master = meetings._master(cal)
    master["DESCRIPTION"] = "Ordre du jour\n\n~~~~~~~~~~ Visio ~~~~~~~~~~\nlien\n~~~~~~~~~~"
    form = meetings.form_of(master, master, PARIS, ME.email)
    assert form.description == "Ordre du jour"
    assert form.periodic and form.days == ["MO", "TH"] and form.repeat_until == "2026-12-31"
    assert form.start == "10:00" and form.end == "11:00" and form.duration == "60"
