"""Every expansion is bounded (visio_core.recurrence), and bounded means the same answers.

Each pathological shape runs in a thread with a deadline far above its normal
time (seconds, where it takes milliseconds): these are not timing tests, but a
hang fails them instead of wedging the suite.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from itertools import islice
from typing import Any

import pytest
import recurring_ical_events

from tests.core.conftest import PARIS
from visio_core import agenda, recurrence, when
from visio_core.ical import parse
from visio_core.recurrence import TooCostly, excessive_recurrence

LIMIT = 10_000
NOW = dt.datetime(2027, 3, 15, 8, 0, tzinfo=dt.UTC)
DEADLINE = 30.0  # seconds; each of these takes well under one


def finishes(fn: Callable[[], Any]) -> Any:
    """fn's result (or its exception), failing the test if it has not returned in time."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the test as it is
            box["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(DEADLINE)
    assert not thread.is_alive(), "the expansion did not return: unbounded"
    if "error" in box:
        raise box["error"]
    return box["value"]


def event(
    rule: str = "",
    start: str = ":20270301T090000Z",
    end: str = ":20270301T100000Z",
    extra: tuple[str, ...] = (),
    uid: str = "s@example.org",
    overrides: tuple[str, ...] = (),
) -> Any:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        "DTSTAMP:20260101T000000Z",
        f"DTSTART{start}",
        f"DTEND{end}",
        "SUMMARY:Point",
        "CATEGORIES:Visio",
    ]
    if rule:
        lines.append(f"RRULE:{rule}")
    lines += [*extra, "END:VEVENT", *overrides]
    body = "\r\n".join(lines) + "\r\n"
    return parse(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\n"
        + PARIS
        + body
        + "END:VCALENDAR\r\n"
    )


def expand_everywhere(cal: Any) -> None:
    """What the product does with a stored event: each must return, whatever it says."""
    window = (NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=31))
    for fn in (
        lambda: recurrence.between(cal, *window),
        lambda: list(islice(recurrence.after(cal, NOW), 50)),
        lambda: when.next_occurrence(cal, NOW),
        lambda: agenda.index_of(cal, NOW),
    ):
        with contextlib.suppress(TooCostly):  # refusing to expand is a bounded answer
            finishes(fn)


HOSTILE = {
    "secondly": ("FREQ=SECONDLY", ":20200101T090000Z"),
    "minutely": ("FREQ=MINUTELY", ":20200101T090000Z"),
    "secondly-until": ("FREQ=SECONDLY;UNTIL=21000101T000000Z", ":20200101T090000Z"),
    "minutely-count": ("FREQ=MINUTELY;COUNT=10000", ":20200101T090000Z"),
    "bysecond-list": (
        "FREQ=DAILY;BYHOUR="
        + ",".join(map(str, range(24)))
        + ";BYMINUTE="
        + ",".join(map(str, range(60)))
        + ";BYSECOND="
        + ",".join(map(str, range(60))),
        ":20270301T090000Z",
    ),
    "byminute-hourly": (
        "FREQ=HOURLY;BYMINUTE=" + ",".join(map(str, range(60))),
        ":20270301T090000Z",
    ),
    "hourly-1900": ("FREQ=HOURLY", ":19000101T090000Z"),
    "never-yearly": ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", ":20200101T090000Z"),
    "never-hourly": ("FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30", ":20200101T090000Z"),
    "never-secondly-count": ("FREQ=SECONDLY;COUNT=3;BYMONTH=4;BYMONTHDAY=31", ":20200101T090000Z"),
    "never-setpos": ("FREQ=MONTHLY;BYDAY=MO;BYSETPOS=6", ":20200101T090000Z"),
    # The fuzzer's second hang: one candidate an hour, the 366th asked for.
    "never-setpos-hourly": ("FREQ=HOURLY;BYSETPOS=366;BYHOUR=1,2,3", ":20261203T100000Z"),
    "leap-day-daily": ("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29", ":19000101T090000Z"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rules_are_refused_with_a_sentence(name: str) -> None:
    rule, start = HOSTILE[name]
    cal = event(rule, start=start, end=start)
    found = finishes(lambda: excessive_recurrence(cal, LIMIT, NOW))
    assert found is not None, f"{rule} should not be stored"
    assert found.endswith(".") and len(found) < 400


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_rules_already_stored_cost_a_bounded_time(name: str) -> None:
    # Written before the admission check existed, or put there by hand.
    rule, start = HOSTILE[name]
    expand_everywhere(event(rule, start=start, end=start))


def test_secondly_from_2020_is_not_walked_from_its_start() -> None:
    cal = event("FREQ=SECONDLY", start=":20200101T090000Z", end=":20200101T090001Z")
    first = finishes(lambda: list(islice(recurrence.after(cal, NOW), 3)))
    assert [c["DTSTART"].dt for c in first] == [
        NOW,
        NOW + dt.timedelta(seconds=1),
        NOW + dt.timedelta(seconds=2),
    ] or first == []  # either the next seconds, or a refusal to list them


def test_thousands_of_rdates_and_exdates() -> None:
    base = dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)
    rdates = [(base + dt.timedelta(hours=7 * i)).strftime("%Y%m%dT%H%M%SZ") for i in range(3000)]
    exdates = [(base + dt.timedelta(days=i)).strftime("%Y%m%dT%H%M%SZ") for i in range(3000)]
    cal = event(
        "FREQ=DAILY",
        start=":20270101T090000Z",
        end=":20270101T093000Z",
        extra=(f"RDATE:{','.join(rdates)}", f"EXDATE:{','.join(exdates)}"),
    )
    assert finishes(lambda: excessive_recurrence(cal, LIMIT, NOW)) is None
    week = (NOW, NOW + dt.timedelta(days=7))
    found = finishes(lambda: recurrence.between(cal, *week))
    # Every day is excluded; what is left are the RDATEs every 7 hours that are not 09:00.
    assert len(found) == len(recurring_ical_events.of(cal).between(*week)) >= 20
    assert all(c["DTSTART"].dt.hour != 9 for c in found)
    assert finishes(lambda: excessive_recurrence(cal, 5_000, NOW)) is not None  # 6,000 dates


def test_hundreds_of_overrides() -> None:
    overrides = []
    for i in range(300):
        day = dt.date(2027, 1, 1) + dt.timedelta(days=i)
        overrides += [
            "BEGIN:VEVENT",
            "UID:s@example.org",
            "DTSTAMP:20260101T000000Z",
            f"RECURRENCE-ID:{day:%Y%m%d}T090000Z",
            f"DTSTART:{day:%Y%m%d}T140000Z",
            f"DTEND:{day:%Y%m%d}T150000Z",
            f"SUMMARY:Moved {i}",
            "END:VEVENT",
        ]
    cal = event(
        "FREQ=DAILY", start=":20270101T090000Z", end=":20270101T100000Z", overrides=tuple(overrides)
    )
    assert finishes(lambda: excessive_recurrence(cal, LIMIT, NOW)) is None
    found = finishes(lambda: recurrence.between(cal, NOW, NOW + dt.timedelta(days=2)))
    assert sorted(c["DTSTART"].dt.hour for c in found) == [14, 14]
    expand_everywhere(cal)


def test_too_many_overrides_refused() -> None:
    overrides = []
    for i in range(recurrence.MAX_OVERRIDES + 1):
        day = dt.date(2027, 1, 1) + dt.timedelta(days=i)
        overrides += [
            "BEGIN:VEVENT",
            "UID:s@example.org",
            f"RECURRENCE-ID:{day:%Y%m%d}T090000Z",
            f"DTSTART:{day:%Y%m%d}T100000Z",
            "END:VEVENT",
        ]
    cal = event("FREQ=DAILY", overrides=tuple(overrides))
    found = excessive_recurrence(cal, LIMIT, NOW)
    assert found is not None and "modified occurrences" in found


# Bounded must not mean different: the moved series gives what the whole walk gives.
SAME = [
    ("FREQ=DAILY", ":19000101T090000Z", ":19000101T100000Z"),
    (
        "FREQ=DAILY;INTERVAL=3",
        ";TZID=Europe/Paris:20150102T093000",
        ";TZID=Europe/Paris:20150102T103000",
    ),
    (
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,TH",
        ";TZID=Europe/Paris:20100104T140000",
        ";TZID=Europe/Paris:20100104T150000",
    ),
    (
        "FREQ=HOURLY;INTERVAL=5",
        ";TZID=Europe/Paris:20240301T000000",
        ";TZID=Europe/Paris:20240301T003000",
    ),
    ("FREQ=MINUTELY;INTERVAL=45", ":20260101T000000Z", ":20260101T001000Z"),
    (
        "FREQ=MONTHLY;BYDAY=2TU",
        ";TZID=Europe/Paris:19950110T090000",
        ";TZID=Europe/Paris:19950110T100000",
    ),
    ("FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR", ":20000131T160000Z", ":20000131T170000Z"),
    ("FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU", ";VALUE=DATE:19800330", ";VALUE=DATE:19800331"),
    ("FREQ=DAILY", ";VALUE=DATE:19900101", ";VALUE=DATE:19900102"),
    ("FREQ=DAILY", ":20100101T230000", ":20100102T010000"),  # floating
    ("FREQ=WEEKLY;UNTIL=20270320T000000Z", ":20000101T090000Z", ":20000101T100000Z"),
    ("FREQ=DAILY;UNTIL=20270316T000000Z", ":20000101T090000Z", ":20000101T100000Z"),
    ("FREQ=DAILY;COUNT=9000", ":20030101T090000Z", ":20030101T100000Z"),
    ("FREQ=MONTHLY", ":20000131T090000Z", ":20000131T100000Z"),  # the 31st: not moved
    ("FREQ=YEARLY", ":19960229T090000Z", ":19960229T100000Z"),  # 29 February: not moved
]


@pytest.mark.parametrize(("rule", "start", "end"), SAME)
def test_bounded_expansion_gives_the_same_occurrences(rule: str, start: str, end: str) -> None:
    cal = event(rule, start=start, end=end, extra=("EXDATE:20270317T090000Z",))
    seen = 0
    leap = dt.datetime(2028, 2, 1, tzinfo=dt.UTC)
    windows = [(NOW, NOW + dt.timedelta(days=35)), (NOW - dt.timedelta(days=60), NOW)]
    for lo, hi in [*windows, (leap, leap + dt.timedelta(days=45))]:
        ours = [(str(c.get("UID")), c["DTSTART"].dt) for c in recurrence.between(cal, lo, hi)]
        whole = [
            (str(c.get("UID")), c["DTSTART"].dt)
            for c in recurring_ical_events.of(cal).between(lo, hi)
        ]
        assert sorted(ours, key=repr) == sorted(whole, key=repr)
        seen += len(ours)
    assert seen, "each case has occurrences in these windows"
    ahead = [c["DTSTART"].dt for c in islice(recurrence.after(cal, NOW), 25)]
    horizon = NOW + recurrence.DEFAULT_HORIZON  # `after` looks ten years ahead, no further
    whole_ahead = [
        c["DTSTART"].dt
        for c in islice(recurring_ical_events.of(cal).after(NOW), 25)
        if _utc(c["DTSTART"].dt) < horizon
    ]
    assert ahead == whole_ahead


def _utc(value: dt.date) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.combine(value, dt.time(), dt.UTC)


def test_a_yearly_meeting_is_found_years_ahead() -> None:
    cal = event("FREQ=YEARLY;INTERVAL=4", start=":20280601T090000Z", end=":20280601T100000Z")
    found = when.next_occurrence(cal, NOW)
    assert found is not None and found.start.year == 2028


def test_a_rule_built_in_code_is_read_like_a_parsed_one() -> None:
    # The portal builds vRecur({"FREQ": "WEEKLY", "UNTIL": datetime}) with scalars.
    from icalendar import vRecur

    cal = event()
    master = cal.walk("VEVENT")[0]
    until = dt.datetime(2027, 3, 31, 21, 59, 59, tzinfo=dt.UTC)
    master.add("RRULE", vRecur({"FREQ": "WEEKLY", "BYDAY": ["MO"], "UNTIL": until}))
    found = recurrence.between(cal, NOW, NOW + dt.timedelta(days=21))
    assert [c["DTSTART"].dt.weekday() for c in found] == [0, 0, 0]
    assert excessive_recurrence(cal, LIMIT, NOW) is None


def test_several_rules_are_refused() -> None:
    # The fuzzer's body: Radicale takes the series as bounded by its first rule,
    # then lists the open-ended second one without end.
    cal = event(
        "FREQ=DAILY;UNTIL=20371231T235959Z",
        start=":20271203T231000",
        end=":20271203T233000",
        extra=("RRULE:FREQ=HOURLY;BYDAY=FR,SA,WE,TU,SA,WE;WKST=SU",),
    )
    found = finishes(lambda: excessive_recurrence(cal, LIMIT, NOW))
    assert found is not None and "RRULE" in found
    expand_everywhere(cal)
