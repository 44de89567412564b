"""Recurrence rules that would wedge the server are refused at once; the server goes on.

Against the real stack (issue 12): each PUT must be answered, with 400 and a
sentence for what no calendar could show, while a reader keeps getting answers.
The deadlines are far above the normal time: a hang fails, a slow machine does not.
"""

from __future__ import annotations

import pytest
import requests

from tests.e2e.conftest import DavUser
from tests.support import ics

REFUSED = {
    "secondly-open": ("RRULE:FREQ=SECONDLY", "20200101T090000"),
    "minutely-open": ("RRULE:FREQ=MINUTELY", "20200101T090000"),
    "secondly-count": ("RRULE:FREQ=SECONDLY;COUNT=9000", "20200101T090000"),
    "hourly-from-1900": ("RRULE:FREQ=HOURLY", "19000101T090000"),
    "never-matches": ("RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "20200101T090000"),
    "never-matches-hourly": ("RRULE:FREQ=HOURLY;BYMONTH=4;BYMONTHDAY=31", "20260101T090000"),
    "bysecond-list": (
        "RRULE:FREQ=DAILY;BYMINUTE="
        + ",".join(map(str, range(60)))
        + ";BYSECOND="
        + ",".join(map(str, range(60))),
        "20261203T100000",
    ),
}


@pytest.mark.parametrize("category", ["Visio", None])
@pytest.mark.parametrize("name", sorted(REFUSED))
def test_an_unbounded_rule_is_refused_with_a_reason(
    user: DavUser, name: str, category: str | None
) -> None:
    rule, start = REFUSED[name]
    body = ics.event(
        uid=f"{name}-{category}", start=start, end=start, categories=category, extra=rule
    )
    r = user.put(f"{name}.ics", body)
    assert r.status_code == 400, r.text
    assert "recurrence rule" in r.text and r.text.rstrip().endswith(".")
    assert user.get(f"{name}.ics").status_code == 404  # nothing stored
    # The server still answers, and a good series is stored next to it.
    good = ics.event(
        uid=f"ok-{name}-{category}", categories=category, extra="RRULE:FREQ=WEEKLY;BYDAY=TH"
    )
    assert user.put(f"ok-{name}.ics", good).status_code in (201, 204)


def test_a_daily_series_from_1900_is_stored_and_shown(user: DavUser) -> None:
    # Long ago but cheap: it is kept, and its room opens on today's occurrence.
    body = ics.event(
        uid="daily-1900", start="19000101T090000", end="19000101T100000", extra="RRULE:FREQ=DAILY"
    )
    r = user.put("daily-1900.ics", body)
    assert r.status_code in (201, 204), r.text
    stored = user.get("daily-1900.ics").text
    link = ics.join_link(stored)
    page = requests.get(link, timeout=30)
    assert page.status_code == 200
