"""Refusing recurrence rules that expand without bound (visio_core.recurrence)."""

from __future__ import annotations

import pytest
from dateutil import rrule

from tests.core.conftest import build_vcalendar, build_vevent
from visio_core.ical import parse
from visio_core.recurrence import excessive_recurrence

LIMIT = 1000


def with_rule(*lines: str, start: str = ";TZID=Europe/Paris:20250310T100000", **kw: object):
    return parse(build_vcalendar(build_vevent(start=start, extra=lines, **kw)))  # type: ignore[arg-type]


def test_count_over_limit_refused() -> None:
    found = excessive_recurrence(with_rule("RRULE:FREQ=DAILY;COUNT=1001"), LIMIT)
    assert found is not None
    assert "COUNT=1001" in found
    assert "meeting-1@example.org" in found
    assert str(LIMIT) in found


def test_count_at_limit_accepted() -> None:
    assert excessive_recurrence(with_rule("RRULE:FREQ=DAILY;COUNT=1000"), LIMIT) is None


def test_huge_count_refused_without_expanding() -> None:
    found = excessive_recurrence(with_rule("RRULE:FREQ=SECONDLY;COUNT=999999999999"), LIMIT)
    assert found is not None


def test_secondly_until_far_future_refused() -> None:
    # Must return (the check counts at most LIMIT + 1 occurrences); no timing assertion.
    found = excessive_recurrence(with_rule("RRULE:FREQ=SECONDLY;UNTIL=21000101T000000Z"), LIMIT)
    assert found is not None
    assert "FREQ=SECONDLY" in found


def test_until_year_9999_refused() -> None:
    found = excessive_recurrence(with_rule("RRULE:FREQ=MINUTELY;UNTIL=99991231T235959Z"), LIMIT)
    assert found is not None


def test_open_ended_weekly_accepted() -> None:
    assert excessive_recurrence(with_rule("RRULE:FREQ=WEEKLY;BYDAY=MO"), LIMIT) is None


def test_open_ended_secondly_refused_with_a_reason() -> None:
    # No calendar can show a meeting every second: refused, saying why.
    found = excessive_recurrence(with_rule("RRULE:FREQ=SECONDLY"), LIMIT)
    assert found is not None
    assert "times a month" in found


def test_daily_until_within_limit_accepted() -> None:
    cal = with_rule("RRULE:FREQ=DAILY;UNTIL=20250601T090000Z")
    assert excessive_recurrence(cal, LIMIT) is None


def test_daily_until_just_over_limit_refused() -> None:
    cal = with_rule("RRULE:FREQ=DAILY;UNTIL=20250601T090000Z")
    # 10 March .. 1 June inclusive is 84 occurrences.
    assert excessive_recurrence(cal, 84) is None
    assert excessive_recurrence(cal, 83) is not None


def test_until_with_utc_start() -> None:
    cal = with_rule("RRULE:FREQ=HOURLY;UNTIL=20250311T090000Z", start=":20250310T090000Z")
    assert excessive_recurrence(cal, 25) is None
    assert excessive_recurrence(cal, 24) is not None


def test_until_with_floating_start() -> None:
    cal = with_rule("RRULE:FREQ=DAILY;UNTIL=20250320T100000", start=":20250310T100000")
    assert excessive_recurrence(cal, 11) is None
    assert excessive_recurrence(cal, 10) is not None


def test_all_day_until_date() -> None:
    cal = with_rule(
        "RRULE:FREQ=DAILY;UNTIL=20250319",
        start=";VALUE=DATE:20250310",
        end=";VALUE=DATE:20250311",
    )
    assert excessive_recurrence(cal, 10) is None
    assert excessive_recurrence(cal, 9) is not None


def test_no_rule_accepted() -> None:
    assert excessive_recurrence(with_rule(), LIMIT) is None


def test_vtodo_rule_checked() -> None:
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Client 1.0//EN\r\n"
        "BEGIN:VTODO\r\nUID:todo-1@example.org\r\nDTSTAMP:20250101T090000Z\r\n"
        "DTSTART:20250310T090000Z\r\nRRULE:FREQ=MINUTELY;COUNT=5000\r\n"
        "END:VTODO\r\nEND:VCALENDAR\r\n"
    )
    found = excessive_recurrence(parse(text), LIMIT)
    assert found is not None and "todo-1@example.org" in found


def test_second_event_of_calendar_checked() -> None:
    ok = build_vevent(uid="ok@example.org", extra=["RRULE:FREQ=WEEKLY;COUNT=3"])
    bad = build_vevent(uid="bad@example.org", extra=["RRULE:FREQ=DAILY;COUNT=5000"])
    found = excessive_recurrence(parse(build_vcalendar(ok, bad)), LIMIT)
    assert found is not None and "bad@example.org" in found


class _TooMuchWork(Exception):
    """Raised by the instrumented dateutil once the check has clearly stopped being bounded."""


@pytest.fixture
def step_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let dateutil take at most 100 day steps per counted occurrence, then raise."""
    budget = {"steps": 100 * (LIMIT + 1)}
    original = rrule._iterinfo.ddayset

    def counted(self, *args):
        budget["steps"] -= 1
        if budget["steps"] < 0:
            raise _TooMuchWork
        return original(self, *args)

    monkeypatch.setattr(rrule._iterinfo, "ddayset", counted)


def test_cost_bounded_for_rule_that_never_matches() -> None:
    cal = with_rule("RRULE:FREQ=SECONDLY;UNTIL=20300101T000000Z;BYMONTH=2;BYMONTHDAY=30")
    excessive_recurrence(cal, LIMIT)  # either verdict is fine; it must stay cheap


@pytest.mark.usefixtures("step_budget")
def test_step_budget_is_enough_for_ordinary_rules() -> None:
    """The budget used above does not fail ordinary bounded rules."""
    far = with_rule("RRULE:FREQ=SECONDLY;UNTIL=21000101T000000Z")
    assert excessive_recurrence(far, LIMIT) is not None
    daily = with_rule("RRULE:FREQ=DAILY;UNTIL=20250601T090000Z")
    assert excessive_recurrence(daily, LIMIT) is None
