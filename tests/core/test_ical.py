"""ical: parse/serialize and splitting a multi-event import into one resource per UID."""

from __future__ import annotations

import pytest

from visio_core import ical

NEW_YORK = (
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:19700101T000000\r\n"
    "TZOFFSETFROM:-0500\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n"
)


def tzids(cal):
    return sorted(str(tz["TZID"]) for tz in cal.walk("VTIMEZONE"))


def uids(cal):
    return [str(ev["UID"]) for ev in cal.walk("VEVENT")]


def test_three_uids_with_a_shared_timezone(vevent, vcalendar):
    text = vcalendar(
        vevent(uid="a@example.org"),
        vevent(uid="b@example.org", start=";TZID=Europe/Paris:20250311T100000"),
        vevent(uid="c@example.org", start=";TZID=Europe/Paris:20250312T100000"),
        method="PUBLISH",
    )
    parts = ical.split_by_uid(ical.parse(text))
    assert sorted(parts) == ["a@example.org", "b@example.org", "c@example.org"]
    for uid, cal in parts.items():
        assert uids(cal) == [uid]
        assert tzids(cal) == ["Europe/Paris"]
        assert "METHOD" not in cal
        assert str(cal["VERSION"]) == "2.0"
        assert str(cal["PRODID"]) == "-//Example//Client 1.0//EN"
        out = ical.serialize(cal)
        assert out.count("BEGIN:VTIMEZONE") == 1
        assert "DTSTART;TZID=Europe/Paris:" in out


def test_each_part_gets_only_the_timezones_it_uses(vevent, vcalendar, paris_timezone):
    text = vcalendar(
        vevent(uid="paris", extra=["RRULE:FREQ=DAILY;COUNT=3"]),
        vevent(
            uid="paris",
            start=";TZID=America/New_York:20250311T040000",
            end=";TZID=America/New_York:20250311T050000",
            extra=["RECURRENCE-ID;TZID=Europe/Paris:20250311T100000"],
        ),
        vevent(uid="utc", start=":20250312T100000Z", end=":20250312T110000Z"),
        vevent(
            uid="nyc",
            start=";TZID=America/New_York:20250313T090000",
            end=";TZID=America/New_York:20250313T100000",
        ),
        timezones=(paris_timezone, NEW_YORK),
    )
    parts = ical.split_by_uid(ical.parse(text))
    assert tzids(parts["paris"]) == ["America/New_York", "Europe/Paris"]
    assert len(uids(parts["paris"])) == 2  # master and its override stay together
    assert tzids(parts["utc"]) == []
    assert tzids(parts["nyc"]) == ["America/New_York"]


def test_timezone_used_only_by_exdate_is_kept(vevent, vcalendar, paris_timezone):
    text = vcalendar(
        vevent(
            uid="a",
            start=":20250310T090000Z",
            end=":20250310T100000Z",
            extra=["RRULE:FREQ=DAILY;COUNT=5", "EXDATE;TZID=America/New_York:20250311T040000"],
        ),
        vevent(uid="b"),
        timezones=(paris_timezone, NEW_YORK),
    )
    parts = ical.split_by_uid(ical.parse(text))
    assert tzids(parts["a"]) == ["America/New_York"]
    assert tzids(parts["b"]) == ["Europe/Paris"]


def test_single_uid_comes_back_whole_without_method(vevent, vcalendar):
    text = vcalendar(
        vevent(uid="only@example.org", extra=["RRULE:FREQ=WEEKLY;COUNT=4"]),
        vevent(uid="only@example.org", extra=["RECURRENCE-ID;TZID=Europe/Paris:20250317T100000"]),
        method="REQUEST",
    ).replace("VERSION:2.0\r\n", "VERSION:2.0\r\nX-WR-CALNAME:Mon agenda\r\n")
    whole = ical.parse(text)
    parts = ical.split_by_uid(whole)
    assert list(parts) == ["only@example.org"]
    cal = parts["only@example.org"]
    assert cal is whole
    assert "METHOD" not in cal
    assert str(cal["X-WR-CALNAME"]) == "Mon agenda"
    assert len(cal.walk("VEVENT")) == 2
    assert tzids(cal) == ["Europe/Paris"]
    expected = ical.parse(text)
    expected.pop("METHOD")
    assert ical.serialize(cal) == ical.serialize(expected)


def test_uid_of(vevent, vcalendar):
    assert ical.uid_of(ical.parse(vcalendar(vevent(uid="x-1@example.org")))) == "x-1@example.org"
    empty = ical.parse("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n")
    assert ical.uid_of(empty) == ""


def test_parse_refuses_text_that_is_not_a_calendar():
    with pytest.raises(ValueError):
        ical.parse("BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n")
    with pytest.raises(ValueError):
        ical.parse("hello")


def test_parse_serialize_keeps_escaped_text(vevent, vcalendar):
    text = vcalendar(vevent(summary="Budget\\, planning\\; suite", extra=["X-FOO:a,b,c"]))
    out = ical.serialize(ical.parse(text))
    assert "SUMMARY:Budget\\, planning\\; suite" in out
    assert "X-FOO:a,b,c" in out
    assert ical.serialize(ical.parse(out)) == out
