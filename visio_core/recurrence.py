"""Guarding against recurrence rules that would expand without bound.

Radicale counts a bounded rule's occurrences by listing them all, so
`FREQ=SECONDLY;UNTIL=2100…` would hold a server thread for hours. This check
counts at most `limit + 1` occurrences, so it costs the same whatever the rule.
Open-ended rules are normal (a weekly meeting with no end date) and pass: the
product only ever expands them lazily within a window.
"""

from __future__ import annotations

import datetime as dt
import re
from itertools import islice

from dateutil import rrule
from icalendar import Calendar

from visio_core.ical import OBJECT_TYPES

_UTC_UNTIL = re.compile(r"(UNTIL=\d{8}T\d{6})Z")


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


# dateutil walks every FREQ period up to UNTIL even when BY-rules match none of
# them; past this many periods the rule is refused without walking it.
_MAX_PERIODS_PER_OCCURRENCE = 100
_PERIOD_SECONDS = {
    "SECONDLY": 1,
    "MINUTELY": 60,
    "HOURLY": 3600,
    "DAILY": 86400,
    "WEEKLY": 7 * 86400,
    "MONTHLY": 28 * 86400,
    "YEARLY": 365 * 86400,
}


def _periods(parts: dict[str, str], start: dt.date | dt.datetime) -> float:
    """How many FREQ periods lie between DTSTART and UNTIL (an upper bound of the walk)."""
    until = parts.get("UNTIL", "")[:15].rstrip("Z")
    try:
        end = (
            dt.datetime.strptime(until, "%Y%m%dT%H%M%S")
            if "T" in until
            else (dt.datetime.strptime(until[:8], "%Y%m%d"))
        )
    except ValueError:
        return 0
    begin = start if isinstance(start, dt.datetime) else dt.datetime.combine(start, dt.time())
    span = (end - begin.replace(tzinfo=None)).total_seconds()
    step = _PERIOD_SECONDS.get(parts.get("FREQ", "").upper(), 86400)
    interval = int(parts["INTERVAL"]) if parts.get("INTERVAL", "").isdigit() else 1
    return max(span, 0) / (step * max(interval, 1))


def _count_upto(rule_text: str, start: dt.date | dt.datetime, limit: int) -> int:
    if not isinstance(start, dt.datetime):
        start = dt.datetime.combine(start, dt.time())
    if start.tzinfo is not None:
        start = start.astimezone(dt.UTC).replace(tzinfo=None)
    # Compare in naive UTC: dateutil refuses to mix an aware start with a naive UNTIL.
    rule_text = _UTC_UNTIL.sub(r"\1", rule_text)
    rule = rrule.rrulestr(rule_text, dtstart=start, ignoretz=True)
    return sum(1 for _ in islice(iter(rule), limit + 1))


def excessive_recurrence(cal: Calendar, limit: int) -> str | None:
    """A sentence saying which rule expands beyond `limit`, or None when all are fine."""
    for comp in cal.subcomponents:
        start = getattr(comp.get("DTSTART"), "dt", None)
        if comp.name not in OBJECT_TYPES or not isinstance(start, dt.date):
            continue
        for rule in _as_list(comp.get("RRULE")):
            text = rule.to_ical().decode()  # type: ignore[attr-defined]
            parts = dict(p.split("=", 1) for p in text.split(";") if "=" in p)
            if "COUNT" in parts:
                too_many = not parts["COUNT"].isdigit() or int(parts["COUNT"]) > limit
            elif "UNTIL" in parts:
                if _periods(parts, start) > _MAX_PERIODS_PER_OCCURRENCE * (limit + 1):
                    too_many = True  # too long to even count: refused unwalked
                else:
                    try:
                        too_many = _count_upto(text, start, limit) > limit
                    except (ValueError, TypeError, OverflowError):
                        continue  # unreadable rules are Radicale's to refuse
            else:
                continue
            if too_many:
                return (
                    f"The recurrence rule {text!r} of {comp.get('UID', '?')} repeats more than "
                    f"{limit} times; shorten it or give it an end date."
                )
    return None
