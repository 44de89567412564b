"""When a meeting happens and how to say it (visio_core.when)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from icalendar import Calendar

from tests.core.conftest import PARIS as PARIS_VTIMEZONE
from tests.core.conftest import build_vcalendar, build_vevent
from visio_core.ical import parse
from visio_core.when import (
    Occurrence,
    format_range,
    next_occurrence,
    occurrences_after,
    zone_name,
)

PARIS = ZoneInfo("Europe/Paris")


def paris(y: int, mo: int, d: int, h: int, mi: int) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=PARIS)


def utc(y: int, mo: int, d: int, h: int, mi: int) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


def override(rid: str, start: str, end: str, *extra: str) -> str:
    return build_vevent(
        start=f";TZID=Europe/Paris:{start}",
        end=f";TZID=Europe/Paris:{end}",
        extra=[f"RECURRENCE-ID;TZID=Europe/Paris:{rid}", *extra],
    )


def weekly_series() -> Calendar:
    """Mondays 10:00-11:00 Paris from 10 March 2025; 17 March excluded by EXDATE,
    24 March cancelled by an override, 7 April moved to 15:00-16:30."""
    master = build_vevent(
        extra=["RRULE:FREQ=WEEKLY", "EXDATE;TZID=Europe/Paris:20250317T100000"],
    )
    cancelled = override(
        "20250324T100000", "20250324T100000", "20250324T110000", "STATUS:CANCELLED"
    )
    moved = override("20250407T100000", "20250407T150000", "20250407T163000")
    return parse(build_vcalendar(master, cancelled, moved))


def test_weekly_skips_exdate_and_cancelled_override() -> None:
    found = occurrences_after(weekly_series(), utc(2025, 3, 11, 0, 0), limit=3)
    assert [o.start for o in found] == [
        paris(2025, 3, 31, 10, 0),  # 17 (EXDATE) and 24 (cancelled) skipped; after DST too
        paris(2025, 4, 7, 15, 0),  # the moved override
        paris(2025, 4, 14, 10, 0),
    ]
    assert [o.end - o.start for o in found] == [
        dt.timedelta(hours=1),
        dt.timedelta(hours=1, minutes=30),
        dt.timedelta(hours=1),
    ]
    assert all(o.zone == "Europe/Paris" for o in found)
    assert not any(o.cancelled for o in found)


def test_next_occurrence_skips_exdate_and_cancelled() -> None:
    cal = weekly_series()
    nxt = next_occurrence(cal, utc(2025, 3, 12, 0, 0))
    assert nxt is not None
    assert nxt.start == paris(2025, 3, 31, 10, 0)
    assert nxt.start.utcoffset() == dt.timedelta(hours=2)  # summer time in its own zone


def test_ongoing_occurrence_counts_until_it_ends() -> None:
    cal = weekly_series()
    ongoing = next_occurrence(cal, paris(2025, 3, 10, 10, 30))
    assert ongoing is not None and ongoing.start == paris(2025, 3, 10, 10, 0)
    after_end = next_occurrence(cal, paris(2025, 3, 10, 11, 0))
    assert after_end is not None and after_end.start == paris(2025, 3, 31, 10, 0)


def test_limit_respected_for_open_ended_rule() -> None:
    assert len(occurrences_after(weekly_series(), utc(2025, 1, 1, 0, 0), limit=7)) == 7


def test_no_occurrence_after_series_end() -> None:
    cal = parse(build_vcalendar(build_vevent(extra=["RRULE:FREQ=DAILY;COUNT=3"])))
    assert next_occurrence(cal, utc(2025, 3, 13, 0, 0)) is None
    last = next_occurrence(cal, utc(2025, 3, 12, 0, 0))
    assert last is not None and last.start == paris(2025, 3, 12, 10, 0)


def test_cancelled_single_event_has_no_occurrence() -> None:
    cal = parse(build_vcalendar(build_vevent(extra=["STATUS:CANCELLED"])))
    assert next_occurrence(cal, utc(2025, 1, 1, 0, 0)) is None


def test_duration_and_floating_time() -> None:
    cal = parse(
        build_vcalendar(
            build_vevent(start=":20250310T100000", end=None, extra=["DURATION:PT45M"]),
            timezones=(),
        )
    )
    occ = next_occurrence(cal, utc(2025, 3, 1, 0, 0))
    assert occ is not None
    assert occ.zone == "UTC"
    assert occ.start == utc(2025, 3, 10, 10, 0)
    assert occ.end - occ.start == dt.timedelta(minutes=45)


def test_zone_name() -> None:
    assert zone_name(paris(2025, 3, 10, 10, 0)) == "Europe/Paris"
    assert zone_name(dt.datetime(2025, 3, 10, 10, 0)) == "UTC"
    assert zone_name(dt.date(2025, 3, 10)) == "UTC"


# --- format_range --------------------------------------------------------------------


def occ(start: dt.datetime, end: dt.datetime, zone: str = "Europe/Paris") -> Occurrence:
    return Occurrence(start, end, zone)


def test_format_range_fr() -> None:
    o = occ(paris(2026, 12, 3, 10, 0), paris(2026, 12, 3, 11, 30))
    assert format_range(o, "fr") == "jeudi 3 décembre 2026, 10:00 – 11:30 (Europe/Paris)"


def test_format_range_en() -> None:
    o = occ(paris(2026, 12, 3, 10, 0), paris(2026, 12, 3, 11, 30))
    assert format_range(o, "en") == "Thursday 3 December 2026, 10:00 – 11:30 (Europe/Paris)"


def test_format_range_in_event_zone_whatever_the_input_zone() -> None:
    o = occ(utc(2025, 8, 14, 7, 0), utc(2025, 8, 14, 8, 0))
    assert format_range(o, "fr") == "jeudi 14 août 2025, 09:00 – 10:00 (Europe/Paris)"
    ny = occ(utc(2025, 8, 14, 7, 0), utc(2025, 8, 14, 8, 0), "America/New_York")
    assert format_range(ny, "en") == "Thursday 14 August 2025, 03:00 – 04:00 (America/New_York)"


def test_format_range_over_several_days() -> None:
    o = occ(paris(2025, 2, 28, 22, 0), paris(2025, 3, 1, 2, 0))
    assert format_range(o, "fr") == (
        "vendredi 28 février 2025, 22:00 – samedi 1 mars 2025, 02:00 (Europe/Paris)"
    )
    assert format_range(o, "en") == (
        "Friday 28 February 2025, 22:00 – Saturday 1 March 2025, 02:00 (Europe/Paris)"
    )


def test_format_range_unknown_language_is_french() -> None:
    o = occ(paris(2026, 12, 3, 10, 0), paris(2026, 12, 3, 11, 30))
    assert format_range(o, "de") == format_range(o, "fr")


def test_format_range_unknown_zone_falls_back_to_utc_but_keeps_name() -> None:
    o = occ(utc(2025, 3, 10, 9, 0), utc(2025, 3, 10, 10, 0), "Mars/Olympus_Mons")
    assert format_range(o, "en") == "Monday 10 March 2025, 09:00 – 10:00 (Mars/Olympus_Mons)"


def test_format_range_of_computed_occurrence() -> None:
    nxt = next_occurrence(weekly_series(), utc(2025, 4, 1, 0, 0))
    assert nxt is not None
    assert format_range(nxt, "fr") == "lundi 7 avril 2025, 15:00 – 16:30 (Europe/Paris)"
    assert format_range(nxt, "en") == "Monday 7 April 2025, 15:00 – 16:30 (Europe/Paris)"


# --- findings ------------------------------------------------------------------------

OUTLOOK_ZONE = "Romance Standard Time"  # Outlook's TZID for Paris, with its own VTIMEZONE


def outlook_event() -> Calendar:
    tz = PARIS_VTIMEZONE.replace("TZID:Europe/Paris", f"TZID:{OUTLOOK_ZONE}")
    event = build_vevent(
        start=f";TZID={OUTLOOK_ZONE}:20250710T100000",
        end=f";TZID={OUTLOOK_ZONE}:20250710T110000",
    )
    return parse(build_vcalendar(event, timezones=(tz,)))


def test_non_iana_tzid_occurrence() -> None:
    occ = next_occurrence(outlook_event(), utc(2025, 1, 1, 0, 0))
    assert occ is not None
    assert occ.start == utc(2025, 7, 10, 8, 0)
    assert "10:00 – 11:00" in format_range(occ, "en")
