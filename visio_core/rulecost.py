"""What expanding a recurrence rule costs, before anything is expanded (pure).

dateutil walks a rule period by period from DTSTART, and recurring-ical-events
builds a component per occurrence. Both costs can be known from the rule alone:
how many FREQ periods lie between DTSTART (or a later starting point) and the
end of the walk, how many instants each period tries (BYHOUR × BYMINUTE ×
BYSECOND, and the days of a month or a year), and how many occurrences each
period can yield. The figures are upper bounds, cheap to compute, and they are
what every expansion in the product is checked against (`visio_core.recurrence`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

# The length of one FREQ period (months and years at their longest).
UNIT = {
    "SECONDLY": dt.timedelta(seconds=1),
    "MINUTELY": dt.timedelta(minutes=1),
    "HOURLY": dt.timedelta(hours=1),
    "DAILY": dt.timedelta(days=1),
    "WEEKLY": dt.timedelta(days=7),
    "MONTHLY": dt.timedelta(days=28),
    "YEARLY": dt.timedelta(days=365),
}
# The days one period can yield (BYDAY and the like spread a period over them).
_DAYS_TRIED = {"YEARLY": 366, "MONTHLY": 31, "WEEKLY": 7}
_DAY_PARTS = ("BYDAY", "BYMONTHDAY", "BYYEARDAY", "BYWEEKNO")
# Cost of one period in steps of ~5 µs, measured with dateutil 2.9: a period that
# yields costs little; one that BY-parts filter out costs far more (dateutil
# rebuilds its day sets), up to ~500 µs for a month.
_PERIOD_STEPS = {
    "SECONDLY": 1,
    "MINUTELY": 1,
    "HOURLY": 1,
    "DAILY": 1,
    "WEEKLY": 2,
    "MONTHLY": 3,
    "YEARLY": 16,
}
_FILTERED_STEPS = {
    "SECONDLY": 3,
    "MINUTELY": 3,
    "HOURLY": 3,
    "DAILY": 5,
    "WEEKLY": 8,
    "MONTHLY": 20,
    "YEARLY": 45,
}
# These are the costs of filters that keep a fair share of dates. Filters that keep
# almost none cost up to 100 times more per period, and a rule matching no date at
# all walks to the year 9999 whatever its UNTIL: only a CPU budget bounds those
# (`visio_core.budget`); the model keeps the ordinary cases cheap and exact.
# RFC 5545 3.3.10: the BY-parts that limit (rather than expand) each FREQ.
_LIMITING = {
    "SECONDLY": (
        "BYMONTH",
        "BYWEEKNO",
        "BYYEARDAY",
        "BYMONTHDAY",
        "BYDAY",
        "BYHOUR",
        "BYMINUTE",
        "BYSECOND",
    ),
    "MINUTELY": ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYHOUR", "BYMINUTE"),
    "HOURLY": ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY", "BYHOUR"),
    "DAILY": ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY", "BYDAY"),
    "WEEKLY": ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY"),
    # Expanding parts that meet can still leave a period empty (Feb 30, week 53).
    "MONTHLY": ("BYMONTH", "BYWEEKNO", "BYYEARDAY", "BYMONTHDAY"),
    "YEARLY": ("BYWEEKNO", "BYYEARDAY", "BYMONTHDAY"),
}
FAR_FUTURE = dt.datetime(9999, 1, 1)
SHIFTABLE = ("SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY")


def naive_utc(value: dt.date | dt.datetime) -> dt.datetime:
    """A comparable instant: aware times in UTC, floating times and dates as they are."""
    if not isinstance(value, dt.datetime):
        return dt.datetime.combine(value, dt.time())
    if value.tzinfo is not None:
        try:
            return value.astimezone(dt.UTC).replace(tzinfo=None)
        except (OverflowError, ValueError):
            return value.replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class Rule:
    freq: str
    interval: int
    count: int | None
    until: dt.datetime | None  # naive UTC
    parts: dict[str, int]  # BY-part name -> number of values
    text: str

    @property
    def period(self) -> dt.timedelta:
        return UNIT[self.freq] * self.interval

    @property
    def instants_per_day(self) -> int:
        """Times of day tried per day (DAILY and longer) or per period (shorter)."""
        h, m, s = (self.parts.get(p, 0) or 1 for p in ("BYHOUR", "BYMINUTE", "BYSECOND"))
        if self.freq == "SECONDLY":
            return 1
        if self.freq == "MINUTELY":
            return s
        if self.freq == "HOURLY":
            return m * s
        return h * m * s

    @property
    def filtered(self) -> bool:
        """Whether BY-parts can leave whole periods without any occurrence."""
        return "BYSETPOS" in self.parts or any(p in self.parts for p in _LIMITING[self.freq])

    def steps_per_period(self) -> float:
        table = _FILTERED_STEPS if self.filtered else _PERIOD_STEPS
        return table[self.freq] * self.instants_per_day + self.occurrences_per_period() / 2

    def occurrences_per_period(self) -> int:
        days = _DAYS_TRIED.get(self.freq, 1)
        spread = any(p in self.parts for p in _DAY_PARTS) or (
            self.freq == "YEARLY" and "BYMONTH" in self.parts
        )
        each = (days if spread else 1) * self.instants_per_day
        if "BYSETPOS" in self.parts:
            each = min(each, self.parts["BYSETPOS"])
        return each

    def periods(self, start: dt.datetime, end: dt.datetime) -> float:
        """FREQ periods from `start` to `end` (or UNTIL, if sooner), both included."""
        stop = min(end, self.until) if self.until is not None else end
        span = (stop - start).total_seconds()
        return max(span, 0.0) / self.period.total_seconds() + 1

    def walk_steps(self, start: dt.datetime, end: dt.datetime) -> float:
        """What dateutil does to go from `start` (the rule's first instant) to `end`."""
        periods = self.periods(start, end)
        if self.count is not None and not self.filtered:
            # Every period yields: the walk ends after COUNT occurrences.
            periods = min(periods, self.count / max(self.occurrences_per_period(), 1) + 2)
        return periods * self.steps_per_period()

    def occurrences_between(
        self, first: dt.datetime, start: dt.datetime, end: dt.datetime
    ) -> float:
        """At most this many occurrences in [start, end) of a rule starting at `first`."""
        begin = max(first, start)
        found = self.periods(begin, end) * self.occurrences_per_period() if end > begin else 0.0
        return min(found, self.count) if self.count is not None else found


def rule_of(value: Any) -> Rule | None:
    """A Rule from icalendar's vRecur (None: a rule dateutil could not read either)."""
    try:
        text = value.to_ical().decode()
        # Parsed rules hold lists; rules built in code (vRecur({"FREQ": "WEEKLY"})) may not.
        items = {str(k).upper(): v if isinstance(v, list) else [v] for k, v in value.items()}
        freq = str(items["FREQ"][0]).upper()
        if freq not in UNIT:
            return None
        interval = int(items.get("INTERVAL", [1])[0])
        if interval < 1:
            return None  # RFC 5545: a positive integer; dateutil cannot walk 0
        count = items.get("COUNT")
        until = items.get("UNTIL")
        parts = {k: len(v) for k, v in items.items() if k.startswith("BY")}
        return Rule(
            freq=freq,
            interval=interval,
            count=int(count[0]) if count else None,
            until=naive_utc(until[0]) if until else None,
            parts=parts,
            text=text,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def rules_of(comp: Any) -> list[Rule | None]:
    value = comp.get("RRULE")
    if value is None:
        return []
    values = value if isinstance(value, list) else [value]
    return [rule_of(v) for v in values]
