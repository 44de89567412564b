"""Every expansion of a recurrence, with a budget; and the rules a PUT may store.

Every place that lists occurrences (the agenda, rooms opening, the join page,
free/busy, the portal's views, invitations, the phone's "opens at", the
recorder) goes through `between` or `after` here, never straight to
recurring-ical-events, because a rule can cost without bound:
`FREQ=SECONDLY` from 2020 walks 200 million seconds before reaching today,
`BYMONTH=2;BYMONTHDAY=30` never matches and walks to the year 9999.

Two defences, one cost model (`rulecost`):
- **Bounded work.** An open-ended rule (no COUNT) of a fixed period is moved
  forward to just before the window asked for, by a whole number of its
  periods: the same occurrences, without walking the decades before. What is
  left is checked against a budget of steps and of occurrences; past it the
  expansion raises `TooCostly` (callers skip that event and log it) instead of
  holding a thread.
- **Admission.** `excessive_recurrence` refuses, with a sentence, the rules no
  calendar app writes and no view could show: more than `MONTH_DENSITY`
  occurrences in a month, walks past the budget, rules that never occur,
  too many RDATE/EXDATE values or overrides. Radicale's own time-range code
  (which cannot shift) walks from DTSTART, so that walk is bounded too.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import time
from collections.abc import Iterator
from itertools import islice
from typing import Any

import recurring_ical_events
from dateutil import rrule as du_rrule
from dateutil.relativedelta import relativedelta
from icalendar import Calendar

from visio_core.budget import cpu_budget
from visio_core.ical import OBJECT_TYPES
from visio_core.ical import uid_of as ical_uid
from visio_core.rulecost import FAR_FUTURE, SHIFTABLE, Rule, naive_utc, rules_of

log = logging.getLogger("visio.recurrence")

CPU_SECONDS = 0.5  # of the thread's own CPU time, for one expansion or one check
AFTER_CPU_SECONDS = 1.0  # for the whole of one `after` search
BUDGET_STEPS = 100_000  # dateutil steps for one expansion: well under a second
MAX_OCCURRENCES = 10_000  # components one expansion may build (~50 µs each)
MONTH_DENSITY = 2_000  # occurrences in 31 days a stored rule may have
MAX_OVERRIDES = 1_000  # components with a RECURRENCE-ID in one resource
DEFAULT_HORIZON = dt.timedelta(days=3660)  # how far `after` looks for the next one
ADMISSION_WINDOW = (dt.timedelta(days=-92), dt.timedelta(days=400))  # the agenda's
_MONTH = dt.timedelta(days=31)
_STOP_MARGIN = dt.timedelta(days=2)  # floating times and a query's own margins
_FLOATING = dt.timedelta(hours=15)  # a floating time is within 14 h of UTC


class TooCostly(ValueError):
    """Expanding this calendar over this window would exceed the budget."""


def _values(comp: Any, name: str) -> int:
    found = comp.get(name)
    if found is None:
        return 0
    props = found if isinstance(found, list) else [found]
    return sum(len(getattr(p, "dts", [])) or 1 for p in props)


def _duration(comp: Any) -> dt.timedelta:
    start = comp.get("DTSTART")
    end = comp.get("DTEND") or comp.get("DUE")
    try:
        if end is not None and start is not None:
            length = naive_utc(end.dt) - naive_utc(start.dt)
        elif "DURATION" in comp:
            length = comp["DURATION"].dt
        else:
            length = dt.timedelta(days=1)
    except (AttributeError, TypeError, ValueError, OverflowError):
        length = dt.timedelta(days=1)
    return min(max(length, dt.timedelta(0)), dt.timedelta(days=366))


def _masters(cal: Calendar) -> list[Any]:
    return [
        c
        for c in cal.subcomponents
        if c.name in OBJECT_TYPES and "RECURRENCE-ID" not in c and "DTSTART" in c
    ]


def _shift(comp: Any, rules: list[Rule], before: dt.datetime) -> relativedelta:
    """How far DTSTART may move forward and keep every occurrence from `before` on.

    By whole periods of the rule, so that the moved series has the same grid;
    not for COUNT (it counts from DTSTART), nor where the move would change
    the date a month or a year falls on (29th-31st, 29 February).
    """
    none = relativedelta()
    if not rules or any(r.count is not None for r in rules):
        return none
    if len({(r.freq, r.interval) for r in rules}) != 1:
        return none
    start = comp["DTSTART"].dt
    rule = rules[0]
    first = naive_utc(start)
    floating = not isinstance(start, dt.datetime) or start.tzinfo is None
    # DTSTART is always an occurrence (recurring-ical-events counts it even where
    # the rule does not match): the moved one must end before the window.
    margin = _duration(comp) + (_FLOATING if floating else dt.timedelta(0))
    target = before - margin
    for r in rules:
        if r.until is not None:
            target = min(target, r.until)
    if rule.freq in SHIFTABLE:
        period = rule.period
        if not isinstance(start, dt.datetime) and period % dt.timedelta(days=1):
            return none
        try:
            whole = (target - first) // period - 1
        except OverflowError:
            return none
        return relativedelta(seconds=int((period * whole).total_seconds())) if whole > 0 else none
    own_days = any(p in rule.parts for p in ("BYMONTHDAY", "BYDAY", "BYYEARDAY", "BYWEEKNO"))
    if first.day > 28 and not own_days:
        return none  # the default day is DTSTART's: a move must not change it
    months = rule.interval * (12 if rule.freq == "YEARLY" else 1)
    whole = ((target.year - first.year) * 12 + target.month - first.month) // months - 1
    return relativedelta(months=months * whole) if whole > 0 else none


def _bounded(comp: Any, by: relativedelta, stop: dt.datetime) -> Any:
    """A copy of a series' master: moved forward `by`, its rules ending at `stop`.

    An UNTIL just past the window ends the walk there (dateutil compares it with
    each date the BY-parts let through; one that lets none through is stopped
    by the CPU budget instead).
    """
    bounded = copy.copy(comp)
    for name in ("DTSTART", "DTEND", "DUE"):
        if by and name in comp:
            prop = copy.copy(comp[name])
            prop.dt = prop.dt + by
            bounded[name] = prop
    start = comp["DTSTART"].dt
    if not isinstance(start, dt.datetime):
        end: dt.date | dt.datetime = stop.date()
    elif start.tzinfo is not None:
        end = stop.replace(tzinfo=dt.UTC)
    else:
        end = stop
    rules = comp["RRULE"] if isinstance(comp["RRULE"], list) else [comp["RRULE"]]
    capped = []
    for rule in rules:
        rule = copy.copy(rule)
        until = rule.get("UNTIL")
        until = until if isinstance(until, list) or until is None else [until]
        if "COUNT" in rule:
            pass  # ends by itself; a sparse one is stopped by the CPU budget
        elif not until or naive_utc(until[0]) > naive_utc(end):
            rule["UNTIL"] = [end]
        capped.append(rule)
    bounded["RRULE"] = capped if len(capped) > 1 else capped[0]
    return bounded


def _check_dates(cal: Calendar, limit: int) -> str | None:
    overrides = sum(1 for c in cal.subcomponents if "RECURRENCE-ID" in c)
    if overrides > MAX_OVERRIDES:
        return f"it has {overrides} modified occurrences; at most {MAX_OVERRIDES} are allowed"
    for comp in cal.subcomponents:
        if comp.name in OBJECT_TYPES:
            dates = _values(comp, "RDATE") + _values(comp, "EXDATE")
            if dates > limit:
                return f"it lists {dates} RDATE/EXDATE dates; at most {limit} are allowed"
    return None


def plan(cal: Calendar, start: dt.datetime, end: dt.datetime) -> Calendar:
    """The calendar to expand over [start, end): the same occurrences there, bounded work.

    Raises TooCostly when even that would exceed the budget.
    """
    problem = _check_dates(cal, MAX_OCCURRENCES)
    if problem:
        raise TooCostly(problem)
    lo, hi = naive_utc(start), naive_utc(end)
    steps = occurrences = 0.0
    replaced: dict[int, Any] = {}
    for comp in _masters(cal):
        found = rules_of(comp)
        if not found:
            continue
        rules = [r for r in found if r is not None]
        if len(rules) != len(found):
            raise TooCostly("a recurrence rule cannot be read")
        by = _shift(comp, rules, lo)
        replaced[id(comp)] = _bounded(comp, by, hi + _STOP_MARGIN)
        first = naive_utc(comp["DTSTART"].dt) + by
        reach = lo - _duration(comp)
        for r in rules:
            steps += r.walk_steps(first, hi)
            occurrences += r.occurrences_between(first, reach, hi)
    if steps > BUDGET_STEPS or occurrences > MAX_OCCURRENCES:
        raise TooCostly(
            f"expanding {start:%Y-%m-%d}..{end:%Y-%m-%d} would take {steps:.0f} steps "
            f"and up to {occurrences:.0f} occurrences"
        )
    if not replaced:
        return cal
    windowed = Calendar()
    windowed.update(cal)
    windowed.subcomponents = [replaced.get(id(c), c) for c in cal.subcomponents]
    return windowed


def between(cal: Calendar, start: dt.datetime, end: dt.datetime) -> list[Any]:
    """Occurrences overlapping [start, end), as recurring-ical-events gives them.

    Raises TooCostly past the budget.
    """
    with cpu_budget(CPU_SECONDS, TooCostly):
        return list(recurring_ical_events.of(plan(cal, start, end)).between(start, end))


def _key(comp: Any) -> tuple[str, Any]:
    start = comp.get("DTSTART")
    return str(comp.get("UID", "")), naive_utc(start.dt) if start is not None else None


def _uid(cal: Calendar) -> str:
    return next((str(c.get("UID", "")) for c in _masters(cal)), "?")


def _begins(comp: Any) -> dt.datetime:
    start = comp.get("DTSTART")
    return naive_utc(start.dt) if start is not None else dt.datetime.min


def after(
    cal: Calendar, start: dt.datetime, horizon: dt.timedelta = DEFAULT_HORIZON
) -> Iterator[Any]:
    """Occurrences that end after `start`, in order, up to `start + horizon`.

    Looks ahead in growing windows, each planned and checked; the whole search
    spends at most AFTER_CPU_SECONDS, so a rule that never matches costs no more
    than one that does. Raises TooCostly only if not even the first window fits.
    """
    stop = start + horizon
    span, cursor, cpu = dt.timedelta(days=1), start, 0.0
    seen: set[tuple[str, Any]] = set()
    while cursor < stop:
        end = min(cursor + span, stop)
        try:
            windowed = plan(cal, cursor, end)
        except TooCostly:
            if span > dt.timedelta(minutes=15):
                span /= 4  # a dense rule: a shorter window
                continue
            if cursor == start:
                raise
            log.warning("%s: occurrences after %s not listed (too costly)", _uid(cal), cursor)
            return
        if cpu >= AFTER_CPU_SECONDS:
            log.warning("%s: search for occurrences stopped at %s (budget)", _uid(cal), cursor)
            return
        began = time.thread_time()
        try:
            with cpu_budget(AFTER_CPU_SECONDS - cpu, TooCostly):
                found = recurring_ical_events.of(windowed).between(cursor, end)
        except TooCostly:
            if cursor == start:
                raise
            log.warning("%s: occurrences after %s not listed (CPU budget)", _uid(cal), cursor)
            return
        cpu += time.thread_time() - began
        found.sort(key=_begins)
        for comp in found:
            key = _key(comp)
            if key not in seen:
                seen.add(key)
                yield comp
        span = span * 2 if len(found) < 100 else max(span / 2, dt.timedelta(minutes=15))
        cursor = end


def _first_within(r: Rule, comp: Any, periods: float) -> bool:
    """Whether the rule has an occurrence within `periods` of DTSTART (a bounded walk)."""
    start = naive_utc(comp["DTSTART"].dt)
    try:
        horizon = start + r.period * int(periods)
    except OverflowError:
        horizon = FAR_FUTURE
    text = ";".join(p for p in r.text.split(";") if not p.startswith(("UNTIL=", "COUNT=")))
    try:
        walk: Any = du_rrule.rrulestr(text, dtstart=start, ignoretz=True)
        walk = walk.replace(until=min(horizon, FAR_FUTURE))
        return next(iter(walk), None) is not None
    except TooCostly:
        raise
    except (ValueError, TypeError, OverflowError):
        return True  # unreadable: Radicale's own parser decides


def excessive_recurrence(cal: Calendar, limit: int, now: dt.datetime | None = None) -> str | None:
    """A sentence saying why this calendar's recurrence cannot be stored, or None.

    `limit` is Radicale's max_vevent_rrule_occurrence (COUNT, and occurrences of
    a bounded rule, which Radicale lists in full). A recurrence this check cannot
    read (two DTSTARTs, an EXDATE that is not a date, INTERVAL=0) is refused too:
    nothing could bound its cost, and other clients could not read it either.
    """
    try:
        return _excessive(cal, limit, now or dt.datetime.now(dt.UTC))
    except TooCostly:
        return "This event's recurrence is too costly to compute; simplify its rule."
    except Exception as e:  # icalendar and dateutil raise many kinds on broken input
        log.info("unreadable recurrence refused: %s: %s", type(e).__name__, e)
        uid = ical_uid(cal)
        return f"The recurrence of {uid} cannot be read (RFC 5545 3.3.10, 3.8.5)."


def _excessive(cal: Calendar, limit: int, now: dt.datetime) -> str | None:
    problem = _check_dates(cal, limit)
    if problem:
        return f"This event cannot be stored: {problem}."
    lo, hi = naive_utc(now + ADMISSION_WINDOW[0]), naive_utc(now + ADMISSION_WINDOW[1])
    for comp in _masters(cal):
        uid = comp.get("UID", "?")
        found = rules_of(comp)
        if len(found) > 1:
            # RFC 5545 3.8.5.3: SHOULD NOT occur more than once. Radicale judges a
            # series bounded by its first rule and then lists them all: an open-ended
            # second rule would be listed for ever.
            return f"The event {uid} has {len(found)} RRULE properties; give it one."
        for r in found:
            if r is None:  # its cost cannot be known, and other clients could not read it
                return f"A recurrence rule of {uid} cannot be read (RFC 5545 3.3.10)."
            problem = _rule_problem(r, comp, limit, lo, hi)
            if problem:
                shown = r.text if len(r.text) <= 80 else r.text[:77] + "…"
                return f"The recurrence rule {shown!r} of {uid} {problem}."
    return None


def _rule_problem(r: Rule, comp: Any, limit: int, lo: dt.datetime, hi: dt.datetime) -> str | None:
    first = naive_utc(comp["DTSTART"].dt)
    if r.count is not None and r.count > limit:
        return f"repeats {r.count} times; at most {limit} are allowed"
    month = max(r.occurrences_between(first, t, t + _MONTH) for t in (first, lo, hi - _MONTH))
    if month > MONTH_DENSITY:
        return (
            f"repeats up to {month:.0f} times a month; at most {MONTH_DENSITY} are allowed "
            "(no calendar can show more)"
        )
    finite = r.count is not None or r.until is not None
    # Radicale lists a bounded rule in full, and walks an open one to its first
    # occurrence and through any time-range query: those walks start at DTSTART.
    if r.walk_steps(first, FAR_FUTURE if finite else hi) > BUDGET_STEPS:
        if finite:
            return "would take too long to list; give it fewer occurrences or an earlier end"
        return "starts too long ago for how often it repeats; start the series later"
    try:
        with cpu_budget(CPU_SECONDS, TooCostly):
            if r.filtered and not _first_within(r, comp, BUDGET_STEPS / r.steps_per_period()):
                return "never occurs (its BY-parts match no date)"
            if finite and _count_upto(r, first, limit) > limit:
                return f"repeats more than {limit} times; shorten it or give it an earlier end"
    except TooCostly:
        # dateutil walks a rule whose BY-parts match (almost) nothing to the year 9999.
        return "matches too few dates to be computed (it may never occur)"
    return None


def _count_upto(r: Rule, start: dt.datetime, limit: int) -> int:
    """Occurrences of a bounded rule, counted up to limit + 1 (the walk is bounded above)."""
    text = r.text
    try:
        rule: Any = du_rrule.rrulestr(
            ";".join(p for p in text.split(";") if not p.startswith("UNTIL=")),
            dtstart=start,
            ignoretz=True,
        )
        rule = rule.replace(until=r.until)
        return sum(1 for _ in islice(iter(rule), limit + 1))
    except TooCostly:
        raise
    except (ValueError, TypeError, OverflowError):
        return 0  # Radicale's own parser decides
