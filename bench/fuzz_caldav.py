"""Fuzz the CalDAV write path: hostile iCalendar bodies PUT to the real stack.

Hypothesis generates calendars, well-formed and broken: recurrence rules of every
FREQ and BY-part, real, invented, missing and bogus time zones, overrides with and
without their master, parameters with quotes, commas and non-UTF-8 bytes, very long
lines, duplicated properties, control characters, huge RDATE/EXDATE lists. Each is
PUT to `visio serve` (started as the tests start it, in a temporary data dir) as a
Visio meeting or as a plain event, sometimes over an earlier one.

Checked: no 5xx; every answer within 2 s; what was accepted reads back and parses;
the server still answers between batches; at the end, `visio rooms rebuild` gives
the registry it replaces. Every failing body is saved under --out, with its shape,
to be turned into a unit test. Prints counts, the slowest answer and its body's
shape, and a baseline: the median time of a well-formed Visio PUT in the same run.

    .venv/bin/python bench/fuzz_caldav.py [--seconds 60] [--out var/fuzz-failures]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin

import icalendar
import requests
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.caldav_put import PASSWORD as STOCK_PASSWORD  # noqa: E402
from bench.caldav_put import start_stock  # noqa: E402
from tests.support.ics import event  # noqa: E402
from tests.support.stack import VISIO, Stack  # noqa: E402

PASSWORD = "fuzz password"
LIMIT_S = 2.0  # every answer within this
HANG_S = 30.0  # no answer after this: the server is taken for wedged
CRLF = b"\r\n"

# ---------------------------------------------------------------- pieces of bodies

FREQS = ["SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"]
DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
REAL_TZ = ["Europe/Paris", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"]
PARIS = [
    "BEGIN:VTIMEZONE",
    "TZID:{tzid}",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
]
BOGUS_TZ = [
    ["BEGIN:VTIMEZONE", "TZID:{tzid}", "END:VTIMEZONE"],  # no observance at all
    [
        "BEGIN:VTIMEZONE",
        "TZID:{tzid}",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+9999",
        "TZOFFSETTO:-2500",
        "DTSTART:19700101T000000",
        "RRULE:FREQ=SECONDLY",
        "END:STANDARD",
        "END:VTIMEZONE",
    ],
    [
        "BEGIN:VTIMEZONE",
        "TZID:{tzid}",
        "BEGIN:DAYLIGHT",
        "TZOFFSETTO:+0200",
        "RRULE:FREQ=MINUTELY;BYSECOND=1,2,3",
        "END:DAYLIGHT",
        "END:VTIMEZONE",
    ],
    [
        "BEGIN:VTIMEZONE",
        "TZID:{tzid}",
        "BEGIN:STANDARD",
        "TZOFFSETFROM:+0100",
        "TZOFFSETTO:+0100",
        "DTSTART:16010101T000000",
        "RDATE:" + ",".join(f"{y}0101T000000" for y in range(1601, 1701)),
        "END:STANDARD",
        "END:VTIMEZONE",
    ],
]
CONTROL = ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\u0085", "\u2028", "\ufeff"]
TEXTS = [
    "Comité technique",
    'Point "hebdo", équipe; suite',
    "Réunion\\, virgule\\; point-virgule\\n ligne",
    "日本語の会議 🎥",
    "Visio",
    "",
    " ",
    "~~~~~~~~~~ Visio ~~~~~~~~~~",
]
PARAMS = [
    "",
    ';CN="Doe, John"',
    ";CN=Doe\\, John",
    ';CN="Quote "inside" quote"',
    ';CN="Ünïcødé"',
    ";LANGUAGE=fr;X-FOO=a,b,c",
    ';X-EMPTY=""',
    ';X-BAD=a"b',
    ";=novalue",
    ";X-LATIN1=\udcc9t\udce9",  # surrogates: become raw Latin-1 bytes (not UTF-8)
]


@dataclass
class Body:
    data: bytes
    shape: list[str]
    visio: bool
    reuse: int  # >= 0: PUT over the n-th href used so far (modulo), else a new href
    plain_untouched: bool  # a plain event whose stored copy must keep its properties
    op: str = "put"  # or "delete" (the organizer's n-th href), "reply" (the attendee's copy)
    partstat: str = "ACCEPTED"  # what the attendee's reply says

    def describe(self) -> str:
        return " ".join(self.shape)[:300]


def _stamp(r: random.Random, year: int | None = None, date_only: bool = False) -> str:
    y = year or r.choice([1900, 1970, 2000, 2026, 2027, 2100, 9999])
    m, d = r.randint(1, 12), r.randint(1, 28)
    if date_only:
        return f"{y:04d}{m:02d}{d:02d}"
    return f"{y:04d}{m:02d}{d:02d}T{r.randint(0, 23):02d}{r.randint(0, 59):02d}00"


def _ints(lo: int, hi: int, valid: bool, max_size: int) -> st.SearchStrategy[list[int]]:
    """A BY-part list: in range and never 0 when `valid`, a little outside otherwise."""
    if valid:
        values = st.integers(lo, hi).filter(lambda v: v != 0 or lo == 0)
    else:
        values = st.integers(lo - 2, hi + 2)
    return st.lists(values, min_size=1, max_size=max_size)


@st.composite
def rrules(draw: st.DrawFn, valid: bool, year: int) -> str:
    # Well-formed rules lean to what calendars hold (daily to yearly, few BY-parts).
    common = ["DAILY", "WEEKLY", "WEEKLY", "MONTHLY", "YEARLY"]
    freq = draw(st.sampled_from([*FREQS, *common] if valid else [*FREQS, "FORTNIGHTLY", ""]))
    parts = [f"FREQ={freq}"] if freq else []
    spans = {
        "BYSECOND": _ints(0, 60, valid, 61),
        "BYMINUTE": _ints(0, 59, valid, 60),
        "BYHOUR": _ints(0, 23, valid, 24),
        "BYMONTHDAY": _ints(-31, 31, valid, 10),
        "BYYEARDAY": _ints(-366, 366, valid, 8),
        "BYWEEKNO": _ints(-53, 53, valid, 8),
        "BYMONTH": _ints(1, 12, valid, 12),
        "BYSETPOS": _ints(-366, 366, valid, 8),
    }
    by_parts = st.lists(st.sampled_from(sorted(spans)), unique=True, max_size=2 if valid else 4)
    for name in draw(by_parts):
        parts.append(f"{name}={','.join(map(str, draw(spans[name])))}")
    if draw(st.booleans()):
        ordinal = st.sampled_from(["", "1", "-1", "+2", "53", "-53"] + ([] if valid else ["0"]))
        days = draw(st.lists(st.tuples(ordinal, st.sampled_from(DAYS)), min_size=1, max_size=7))
        if valid and freq not in ("MONTHLY", "YEARLY"):
            days = [("", d) for _, d in days]  # ordinals only mean something there
        parts.append("BYDAY=" + ",".join(n + d for n, d in days))
    ends = ["none", "none", "count", "until", "until-date"] + ([] if valid else ["both"])
    end = draw(st.sampled_from(ends))
    counts = [1, 2, 10, 500, 10000] if valid else [0, 10001, 10**9, -1]
    if end in ("count", "both"):
        parts.append(f"COUNT={draw(st.sampled_from(counts))}")
    if end in ("until", "until-date", "both"):
        until = [year, year + 1, year + 10] if valid else [1899, 1970, 2026, 2100, 9999]
        time_part = "" if end == "until-date" else "T235959Z"
        parts.append(f"UNTIL={draw(st.sampled_from(until))}1231{time_part}")
    if draw(st.booleans()):
        intervals = [1, 2, 7, 1000] if valid else [0, -1, 10**12]
        parts.append(f"INTERVAL={draw(st.sampled_from(intervals))}")
    if draw(st.booleans()):
        parts.append(f"WKST={draw(st.sampled_from(DAYS if valid else ['XX', '']))}")
    if not valid:
        draw(st.randoms(use_true_random=False)).shuffle(parts)
    return ";".join(parts)


@st.composite
def bodies(draw: st.DrawFn, mate: str, me: str) -> Body:
    r = random.Random(draw(st.integers(0, 2**63)))  # bulk values (long lists, long lines)
    valid = draw(st.booleans())  # half well-formed (hostile only by size or rules)
    visio = draw(st.booleans())
    shape = ["valid" if valid else "broken", "visio" if visio else "plain"]

    # Time zone of DTSTART/DTEND, and the VTIMEZONE the calendar carries (if any).
    tz_kinds = ["utc", "floating", "date", "real+vtz", "real-novtz", "invented+vtz"]
    if not valid:
        tz_kinds += ["invented-novtz", "bogus-vtz", "quoted-tzid", "empty-tzid"]
    tz_kind = draw(st.sampled_from(tz_kinds))
    shape.append(f"tz={tz_kind}")
    tzid = {
        "real+vtz": "Europe/Paris",
        "real-novtz": r.choice(REAL_TZ),
        "invented-novtz": "Mars/Olympus_Mons",
        "invented+vtz": "Bureau de Brest",
        "bogus-vtz": "Bogus/Zone",
        "quoted-tzid": '"/mozilla.org/20050126_1/Europe/Paris"',
        "empty-tzid": "",
    }.get(tz_kind)
    timezones: list[str] = []
    if tz_kind in ("real+vtz", "invented+vtz"):
        timezones = [line.format(tzid=tzid) for line in PARIS]
    elif tz_kind == "bogus-vtz":
        timezones = [line.format(tzid=tzid) for line in r.choice(BOGUS_TZ)]

    year = draw(st.sampled_from([1900, 1970, 2026, 2026, 2027, 2100]))
    shape.append(f"y={year}")

    def when(name: str, value: str | None = None, params: str = "") -> str:
        if tz_kind == "date":
            return f"{name};VALUE=DATE{params}:{value or _stamp(r, year, date_only=True)}"
        v = value or _stamp(r, year)
        if tz_kind == "utc":
            return f"{name}{params}:{v}Z"
        if tz_kind == "floating":
            return f"{name}{params}:{v}"
        return f"{name};TZID={tzid}{params}:{v}"

    uid = draw(
        st.sampled_from(["uuid", "uuid", "long"] + ([] if valid else ["weird", "empty", "missing"]))
    )
    uid_value = {
        "uuid": str(uuid.uuid4()),  # unique whatever Hypothesis draws
        "long": "u" * r.choice([200, 200 if valid else 5000]) + uuid.uuid4().hex,
        "weird": 'a/b\\c;d,e:"f" g../..',
        "empty": "",
    }.get(uid)
    if uid != "uuid":
        shape.append(f"uid={uid}")
    start_value = _stamp(r, year, date_only=tz_kind == "date")

    master: list[str] = []
    if uid_value is not None:
        master.append(f"UID:{uid_value}")
    master += ["DTSTAMP:20261130T090000Z", when("DTSTART", start_value)]
    end_kinds = ["dtend", "dtend", "duration", "none"]
    end_kind = draw(st.sampled_from(end_kinds + ([] if valid else ["before", "neg-dur"])))
    if end_kind == "dtend":
        master.append(when("DTEND"))
    elif end_kind == "duration":
        durations = ["PT1H", "P1D", "P400W", "PT0S"] + ([] if valid else ["P", "PT1.5H"])
        master.append(f"DURATION:{r.choice(durations)}")
    elif end_kind == "before":
        master.append(when("DTEND", _stamp(r, year - 1, date_only=tz_kind == "date")))
    elif end_kind == "neg-dur":
        master.append("DURATION:-PT1H")
    if end_kind != "dtend":
        shape.append(f"end={end_kind}")

    summary = draw(st.sampled_from(TEXTS))
    params = st.sampled_from(PARAMS[:7] if valid else PARAMS)
    if not valid and draw(st.integers(0, 4)) == 0:
        ch = r.choice(CONTROL)
        summary = summary[:3] + ch + summary[3:]
        shape.append(f"ctrl={ch!r}")
    master.append(f"SUMMARY{draw(params)}:{summary}")
    plain_untouched = not visio

    categories = draw(
        st.sampled_from(
            ["Visio", "Travail,Visio", '"Visio"', "Vi\\,sio", "visio", "Audio", "Visio,Audio"]
            if visio
            else ["", "", "Travail", "Travail,Perso", "Visioconférence-non", None]
        )
    )
    if categories is not None and (categories or visio):
        master.append(f"CATEGORIES:{categories}")
    if categories is not None and not visio:
        shape.append(f"cat={categories!r}")

    # Recurrence: rules, RDATE and EXDATE lists.
    n_rules = draw(st.sampled_from([0, 0, 1, 1, 1, 2]))
    for _ in range(n_rules):
        rule = draw(rrules(valid, year))
        master.append(f"RRULE:{rule}")
        shape.append(f"RRULE:{rule[:80]}")
    for name in ("RDATE", "EXDATE"):
        count = draw(st.sampled_from([0, 0, 0, 1, 20, 1000, 5000]))
        if not count:
            continue
        values = [_stamp(r, r.choice([year, year + 1, 2026])) for _ in range(count)]
        if draw(st.booleans()):
            master.append(when(name, ",".join(values)))
        else:
            master += [when(name, v) for v in values]
        shape.append(f"{name}x{count}")
        plain_untouched = plain_untouched and count < 1000

    # People: a local attendee (delivery into another calendar), external ones.
    people = draw(st.sampled_from(["none", "none", "local", "external", "me-attendee"]))
    if people != "none":
        shape.append(f"people={people}")
        organizer = mate if people == "me-attendee" else me
        master.append(f"ORGANIZER{draw(params)}:mailto:{organizer}")
        attendees = {"local": [mate], "external": ["ext@example.net"], "me-attendee": [me]}[people]
        for a in attendees:
            master.append(f"ATTENDEE;PARTSTAT=NEEDS-ACTION{draw(params)}:mailto:{a}")
        plain_untouched = False

    # Our own properties, forged by the client.
    if draw(st.integers(0, 7)) == 0:
        master += ["X-VISIO-ROOM:0123456789abcdef0123456789abcdef", "X-VISIO-ROOM-NUMBER:123456789"]
        shape.append("forged-room")
        plain_untouched = False
    if draw(st.integers(0, 9)) == 0:
        master.append("X-VISIO-RECORD:TRUE")
        master.append("X-VISIO-STREAM-URL:rtmp://127.0.0.1:1/live/x")
        shape.append("record")

    # Long lines, duplicated properties.
    if draw(st.integers(0, 7)) == 0:
        size = r.choice([1000, 20000, 200000])
        master.append("DESCRIPTION:" + "é" * size)
        shape.append(f"long={size}")
    if not valid and draw(st.integers(0, 3)) == 0:
        dup = r.choice(["DTSTART", "UID", "SUMMARY", "DTEND", "CATEGORIES", "RRULE", "DTSTAMP"])
        same = [line for line in master if line.split(":")[0].split(";")[0] == dup]
        master.append(same[0] if same else f"{dup}:x")
        shape.append(f"dup={dup}")
        plain_untouched = False

    # Overrides, with or without their master.
    overrides: list[list[str]] = []
    n_over = draw(st.sampled_from([0, 0, 0, 1, 3, 100, 400]))
    with_master = n_over == 0 or draw(st.booleans())
    if valid and not with_master:
        n_over = 1  # one occurrence someone was invited to (CalDAV takes no more)
    for i in range(n_over):
        rid_value = start_value if i == 0 else _stamp(r, year, date_only=tz_kind == "date")
        ov = [f"UID:{uid_value}"] if uid_value is not None else []
        if not valid and draw(st.integers(0, 9)) == 0:
            ov = [f"UID:other-{i}"]  # a second UID in one resource: refused by CalDAV
        ov += [
            "DTSTAMP:20261130T090000Z",
            when("RECURRENCE-ID", rid_value, ";RANGE=THISANDFUTURE" if i == 1 else ""),
            when("DTSTART"),
            f"SUMMARY:Occurrence {i}",
        ]
        if not with_master and i == 0 and visio:
            ov.append("CATEGORIES:Visio")
        overrides.append(ov)
    if n_over:
        shape.append(f"overrides={n_over}{'' if with_master else '(no master)'}")

    comps: list[str] = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Visio fuzz//EN", *timezones]
    if with_master:
        comps += ["BEGIN:VEVENT", *master, "END:VEVENT"]
    for ov in overrides:
        comps += ["BEGIN:VEVENT", *ov, "END:VEVENT"]
    if not valid and draw(st.integers(0, 5)) == 0:
        other = r.choice(["VTODO", "VJOURNAL", "VALARM", "X-THING", "VFREEBUSY"])
        comps += [
            f"BEGIN:{other}",
            f"UID:{other.lower()}-1",
            "DTSTAMP:20261130T090000Z",
            f"END:{other}",
        ]
        shape.append(f"+{other}")
    comps.append("END:VCALENDAR")

    # Line ends and folding.
    crlf = CRLF if valid or draw(st.integers(0, 3)) else b"\n"
    fold = draw(st.sampled_from(["no", "chars"] + ([] if valid else ["octets"])))
    lines = [_encode(line, fold) for line in comps]
    data = crlf.join(lines) + crlf

    # Byte-level damage.
    damage = "none"
    if not valid:
        damage = draw(
            st.sampled_from(
                ["none"] * 3 + ["truncate", "garbage", "drop-line", "dup-line", "lower", "latin1"]
            )
        )
    if damage != "none":
        shape.append(f"damage={damage}")
        plain_untouched = False
        split = data.split(crlf)
        if damage == "truncate":
            data = data[: r.randint(0, len(data))]
        elif damage == "garbage":
            split.insert(r.randint(1, len(split)), bytes(r.getrandbits(8) for _ in range(40)))
            data = crlf.join(split)
        elif damage == "drop-line" and len(split) > 2:
            del split[r.randint(1, len(split) - 2)]
            data = crlf.join(split)
        elif damage == "dup-line":
            i = r.randint(0, len(split) - 1)
            split.insert(i, split[i])
            data = crlf.join(split)
        elif damage == "lower":
            data = data.replace(b"BEGIN:VEVENT", b"begin:vevent")
        elif damage == "latin1":
            data = data.replace("é".encode(), b"\xe9")
    reuse = draw(st.sampled_from([-1, -1, -1, -1, r.randint(0, 1000)]))
    if reuse >= 0:
        shape.append("over-earlier")
        plain_untouched = False  # what was there before may have been a meeting
    op = draw(st.sampled_from(["put"] * 10 + ["delete", "reply", "reply"]))
    partstat = draw(
        st.sampled_from(["ACCEPTED", "DECLINED", "TENTATIVE", "DELEGATED", "X-MAYBE", '"A,B"'])
    )
    untouched = plain_untouched and "ctrl=" not in " ".join(shape)
    return Body(data, shape, visio, reuse, untouched, op, partstat)


def _encode(line: str, fold: str) -> bytes:
    """One content line; folded at 75 octets between characters ("chars"), or anywhere
    ("octets": inside a UTF-8 sequence, which RFC 5545 3.1 asks readers to restore)."""
    raw = line.encode("utf-8", "surrogateescape")
    if fold == "no" or len(raw) <= 75:
        return raw
    if fold == "octets":
        pieces = [raw[i : i + 74] for i in range(0, len(raw), 74)]
        return b"\r\n ".join(pieces)
    out: list[bytes] = []
    current = b""
    for ch in line:
        b = ch.encode("utf-8", "surrogateescape")
        if len(current) + len(b) > 74:
            out.append(current)
            current = b""
        current += b
    out.append(current)
    return b"\r\n ".join(out)


# ---------------------------------------------------------------- the run


@dataclass
class Failure:
    kind: str
    body: Body
    status: str
    seconds: float
    answer: str


@dataclass
class Run:
    stack: Stack
    calendar: str
    out: Path
    deadline: float
    stock_url: str  # stock Radicale beside ours, to replay slow bodies on
    tried: int = 0
    accepted: int = 0
    refused: int = 0
    server_errors: int = 0
    slow: int = 0
    restarts: int = 0
    hrefs: list[str] = field(default_factory=list)
    slowest: tuple[float, str, str] = (0.0, "", "")
    baseline: list[float] = field(default_factory=list)
    fuzz_times: list[float] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    reasons: Counter[str] = field(default_factory=Counter)  # why 4xx, by first line
    signatures: Counter[str] = field(default_factory=Counter)  # distinct failures
    log_seen: int = 0  # how much of the server log was read
    other_ops: dict[str, int] = field(default_factory=dict)  # deletes and replies made
    plain_checked: int = 0  # plain events read back and compared property by property

    def server_error(self) -> str:
        """The last exception the server logged since the previous call, and where."""
        log = self.stack.log_text()
        new, self.log_seen = log[self.log_seen :], len(log)
        errors = re.findall(r"ERROR radicale: Exception: (.*)", new)
        frames = re.findall(r'File "[^"]*/main/((?!\.venv)[^"]+)", line (\d+), in (\w+)', new)
        if not errors:
            return ""
        where = f" at {frames[-1][0]}:{frames[-1][2]}" if frames else ""
        return re.sub(r"\d+", "N", errors[-1])[:120] + where

    def log_reason(self, href: str) -> str:
        log = self.stack.log_text()
        new, self.log_seen = log[self.log_seen :], len(log)
        found = re.findall(r"Bad PUT request on '[^']*" + re.escape(href) + r"'[^:]*: (.*)", new)
        return found[-1] if found else "?"

    def session(self) -> requests.Session:
        s = requests.Session()
        s.auth = ("fuzz", PASSWORD)
        return s

    def put(self, href: str, data: bytes) -> tuple[requests.Response | None, float, str]:
        t0 = time.perf_counter()
        try:
            r = self.session().put(
                self.calendar + href,
                data=data,
                headers={"Content-Type": "text/calendar; charset=utf-8"},
                timeout=HANG_S,
            )
        except requests.RequestException as e:
            return None, time.perf_counter() - t0, type(e).__name__
        return r, time.perf_counter() - t0, ""

    def try_body(self, body: Body) -> None:
        if time.monotonic() > self.deadline:
            return
        if body.op == "delete" and self.hrefs:
            self.delete(body)
            return
        if body.op == "reply" and self.reply(body):
            return
        self.tried += 1
        if body.reuse >= 0 and self.hrefs:
            href = self.hrefs[body.reuse % len(self.hrefs)]
        else:
            href = f"f{self.tried:06d}.ics"
        r, seconds, error = self.put(href, body.data)
        self.fuzz_times.append(seconds)
        status = str(r.status_code) if r is not None else error
        self.statuses[status[0] + "xx" if r is not None else status] = (
            self.statuses.get(status[0] + "xx" if r is not None else status, 0) + 1
        )
        if seconds > self.slowest[0]:
            self.slowest = (seconds, status, body.describe())
        if r is None:
            self.fail("no-answer", body, status, seconds, error)
            self.recover()
            return
        if seconds > LIMIT_S:
            self.slow += 1
            ours, stock = self.replay(body)
            self.fail(
                "slow",
                body,
                status,
                seconds,
                f"replayed at once into fresh calendars: ours {ours:.2f} s, stock Radicale "
                f"{stock:.2f} s\n{r.text[:500]}",
            )
        if r.status_code >= 500:
            self.server_errors += 1
            self.fail("5xx", body, status, seconds, r.text[:2000])
        elif r.status_code >= 400:
            self.refused += 1
            first = r.text.strip().splitlines()[0] if r.text.strip() else "(empty)"
            if first == "Bad Request":  # Radicale's own refusal: its reason is in the log
                first = "Radicale: " + self.log_reason(href)
            self.reasons[f"{r.status_code} " + re.sub(r"\d+", "N", first)[:90]] += 1
        elif r.status_code >= 200:
            self.accepted += 1
            if href not in self.hrefs:
                self.hrefs.append(href)
            self.check_stored(href, body)

    def answered(self, what: str, body: Body, r: requests.Response | None, seconds: float) -> None:
        """The checks every answer gets (DELETE, reply): in time, no 5xx, still there."""
        self.other_ops[what] = self.other_ops.get(what, 0) + 1
        if r is None:
            self.fail(f"{what}-no-answer", body, "", seconds, "")
            self.recover()
        elif r.status_code >= 500:
            self.server_errors += 1
            self.fail(f"{what}-5xx", body, str(r.status_code), seconds, r.text[:2000])
        elif seconds > LIMIT_S:
            self.slow += 1
            self.fail(f"{what}-slow", body, str(r.status_code), seconds, r.text[:500])

    def delete(self, body: Body) -> None:
        """The organizer deletes an earlier event (cancellations to its attendees)."""
        href = self.hrefs.pop(body.reuse % len(self.hrefs) if body.reuse >= 0 else 0)
        t0 = time.perf_counter()
        try:
            r: requests.Response | None = self.session().delete(
                self.calendar + href, timeout=HANG_S
            )
        except requests.RequestException:
            r = None
        self.answered("delete", body, r, time.perf_counter() - t0)

    def reply(self, body: Body) -> bool:
        """The attendee answers in their own copy (a delivered one), as their client would:
        PARTSTAT changed, the rest sent back as stored. False when there is no copy."""
        mate = ("mate", PASSWORD)
        base = f"{self.stack.caldav_url}mate/calendar/"
        try:
            listing = requests.request(
                "PROPFIND", base, auth=mate, headers={"Depth": "1"}, timeout=HANG_S
            )
            hrefs = re.findall(r"<href>([^<]+\.ics)</href>", listing.text)
            if not hrefs:
                return False
            url = urljoin(base, hrefs[max(body.reuse, 0) % len(hrefs)])
            copy = requests.get(url, auth=mate, timeout=HANG_S)
        except requests.RequestException:
            return False
        if copy.status_code != 200:
            return False
        text = re.sub(r"PARTSTAT=[^;:]*", f"PARTSTAT={body.partstat}", copy.text)
        reply = Body(text.encode(), ["reply", f"PARTSTAT={body.partstat}"], False, -1, False)
        t0 = time.perf_counter()
        try:
            r: requests.Response | None = requests.put(
                url,
                data=reply.data,
                auth=mate,
                headers={"Content-Type": "text/calendar; charset=utf-8"},
                timeout=HANG_S,
            )
        except requests.RequestException:
            r = None
        self.answered("reply", reply, r, time.perf_counter() - t0)
        return True

    def replay(self, body: Body) -> tuple[float, float]:
        """(ours, stock) seconds for the same body, each PUT into a fresh calendar, so a
        slow answer can be told from a slow machine or Radicale's own parsing."""
        times = []
        for base, login, password in (
            (self.stack.caldav_url, "fuzz", PASSWORD),
            (self.stock_url, "bench", STOCK_PASSWORD),
        ):
            url = f"{base}{login}/replay-{uuid.uuid4().hex[:8]}/"
            requests.request("MKCALENDAR", url, auth=(login, password), timeout=30)
            t0 = time.perf_counter()
            with contextlib.suppress(requests.RequestException):
                requests.put(
                    url + "replay.ics",
                    data=body.data,
                    auth=(login, password),
                    headers={"Content-Type": "text/calendar; charset=utf-8"},
                    timeout=HANG_S,
                )
            times.append(time.perf_counter() - t0)
        return times[0], times[1]

    def check_stored(self, href: str, body: Body) -> None:
        """What was accepted reads back, parses, and (plain events) keeps its properties."""
        try:
            got = self.session().get(self.calendar + href, timeout=HANG_S)
        except requests.RequestException as e:
            self.fail("get-no-answer", body, type(e).__name__, 0, "")
            return
        if got.status_code != 200:
            self.fail("get-failed", body, str(got.status_code), 0, got.text[:500])
            return
        try:
            icalendar.Calendar.from_ical(got.text)
        except Exception as e:
            self.fail("stored-unparsable", body, "200", 0, f"{e}\n---\n{got.text[:3000]}")
            return
        if any(ch in got.text for ch in "\x00\x01\x08\x0b\x1b\x7f"):
            self.fail("stored-control-char", body, "200", 0, got.text[:3000])
        if body.plain_untouched:
            self.plain_checked += 1
            sent = _property_names(body.data.decode("utf-8", "replace"))
            stored = _property_names(got.text)
            if sent is not None and stored is not None and sent != stored:
                gone, added = sorted((sent - stored).elements()), sorted((stored - sent).elements())
                diff = f"sent only: {gone}; stored only: {added}"
                self.fail("plain-changed", body, "200", 0, diff + "\n---\n" + got.text[:3000])

    def fail(self, kind: str, body: Body, status: str, seconds: float, answer: str) -> None:
        failure = Failure(kind, body, status, seconds, answer)
        self.failures.append(failure)
        error = self.server_error() if kind == "5xx" else ""
        signature = f"{kind}: {error or answer.splitlines()[0][:100] if answer else kind}"
        self.signatures[signature] += 1
        n = len(self.failures)
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / f"{n:04d}-{kind}.ics").write_bytes(body.data)
        (self.out / f"{n:04d}-{kind}.json").write_text(
            json.dumps(
                {
                    "kind": kind,
                    "status": status,
                    "seconds": round(seconds, 3),
                    "visio": body.visio,
                    "shape": body.shape,
                    "server_error": error,
                    "answer": answer,
                },
                ensure_ascii=False,
                indent=1,
            )
        )
        print(f"  ! {kind} ({status}, {seconds:.2f} s): {body.describe()[:160]}", flush=True)

    def answers(self) -> bool:
        try:
            r = self.session().request("PROPFIND", self.calendar, headers={"Depth": "0"}, timeout=5)
            return r.status_code == 207
        except requests.RequestException:
            return False

    def recover(self) -> None:
        """A wedged server: note it, restart it so the run goes on."""
        if self.answers():
            return
        self.fail(
            "server-stopped-answering",
            self.failures[-1].body,
            "",
            0,
            "no answer to PROPFIND after this body",
        )
        self.restarts += 1
        assert self.stack.proc is not None
        os.killpg(self.stack.proc.pid, signal.SIGKILL)
        self.stack.proc.wait()
        self.stack.stop()
        self.stack.start()

    def measure_baseline(self) -> None:
        href = f"base-{uuid.uuid4().hex[:8]}.ics"
        r, seconds, _ = self.put(href, event(summary="Réunion de référence").encode())
        if r is not None and r.status_code == 201:
            self.baseline.append(seconds)


def _property_names(text: str) -> Counter[str] | None:
    unfolded = text.replace("\r\n", "\n").replace("\n ", "").replace("\n\t", "")
    names = []
    for line in unfolded.split("\n"):
        if not line.strip():
            continue
        name = line.split(":", 1)[0].split(";", 1)[0].upper()
        if name in ("BEGIN", "END"):
            name += ":" + line.split(":", 1)[-1].upper()
        names.append(name)
    return Counter(names) if names else None


def registry_rows(stack: Stack) -> set[tuple[str, ...]]:
    conn = sqlite3.connect(f"file:{stack.data_dir / 'visio.sqlite3'}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT room_id, uid, owner, calendar_path, href, kind, options, token_hash,"
            " room_number, summary, event FROM rooms"
        ).fetchall()
    finally:
        conn.close()
    return {tuple(str(v) for v in row) for row in rows}


def make_calendar(stack: Stack, login: str) -> str:
    stack.add_user(login, PASSWORD, email=f"{login}@example.org")
    url = f"{stack.caldav_url}{login}/calendar/"
    r = requests.request("MKCALENDAR", url, auth=(login, PASSWORD), timeout=30)
    assert r.status_code == 201, r.text
    return url


def minimize(path: Path) -> int:
    """Cut a saved failing body down, line by line, while it still fails the same way
    (a 5xx or no answer); each try goes into a fresh calendar. Prints what is left."""
    data = path.read_bytes()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp) / "stack").start()
        try:
            make_calendar(stack, "fuzz")
            make_calendar(stack, "mate")
            tries = 0

            def fails(candidate: bytes) -> bool:
                nonlocal tries
                tries += 1
                url = f"{stack.caldav_url}fuzz/m{tries}/"
                requests.request("MKCALENDAR", url, auth=("fuzz", PASSWORD), timeout=30)
                try:
                    r = requests.put(
                        url + "m.ics",
                        data=candidate,
                        auth=("fuzz", PASSWORD),
                        headers={"Content-Type": "text/calendar; charset=utf-8"},
                        timeout=HANG_S,
                    )
                except requests.RequestException:
                    stack.restart()
                    return True
                return r.status_code >= 500

            if not fails(data):
                print("this body does not fail (any more)")
                return 1
            lines = data.splitlines(keepends=True)
            chunk = max(1, len(lines) // 2)
            while chunk >= 1:
                i = 0
                while i < len(lines):
                    candidate = lines[:i] + lines[i + chunk :]
                    if candidate and fails(b"".join(candidate)):
                        lines = candidate
                    else:
                        i += chunk
                chunk //= 2
            print(f"# {len(lines)} lines left after {tries} tries", file=sys.stderr)
            sys.stdout.buffer.write(b"".join(lines))
        finally:
            stack.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "fuzz-failures")
    parser.add_argument("--batch", type=int, default=25, help="bodies between two checks")
    parser.add_argument("--seed", type=int, default=None, help="repeat a run's bodies")
    parser.add_argument("--keep", action="store_true", help="keep the data dir under --out")
    parser.add_argument("--minimize", type=Path, help="cut down a saved failing body instead")
    args = parser.parse_args()
    if args.minimize:
        return minimize(args.minimize)
    base_seed = args.seed if args.seed is not None else random.SystemRandom().randint(0, 2**31)
    out = args.out / time.strftime("%Y%m%d-%H%M%S")
    print(f"fuzzing for {args.seconds:.0f} s, seed {base_seed}, failures under {out}")

    with tempfile.TemporaryDirectory() as tmp:
        d = str(out / "data") if args.keep else tmp
        stack = Stack(Path(d) / "stack").start()
        (Path(d) / "stock").mkdir()
        stock, stock_url = start_stock(Path(d) / "stock")
        run = Run(
            stack,
            f"{stack.caldav_url}fuzz/calendar/",
            out,
            time.monotonic() + args.seconds,
            stock_url,
        )
        rebuild_ok = False
        try:
            make_calendar(stack, "fuzz")
            make_calendar(stack, "mate")
            started = time.monotonic()

            @settings(
                max_examples=args.batch,
                phases=[Phase.generate],
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(bodies(mate="mate@example.org", me="fuzz@example.org"))
            def batch(body: Body) -> None:
                run.try_body(body)

            n = 0
            while time.monotonic() < run.deadline:
                seed(base_seed + n)(batch)()
                n += 1
                run.measure_baseline()
                if not run.answers():
                    run.fail(
                        "server-stopped-answering",
                        run.failures[-1].body
                        if run.failures
                        else Body(b"", ["(none)"], False, -1, False),
                        "",
                        0,
                        "PROPFIND failed",
                    )
                    run.recover()
                if n % 20 == 0:
                    print(
                        f"  {time.monotonic() - started:5.0f} s: {run.tried} tried, "
                        f"{run.accepted} accepted, {run.refused} refused, "
                        f"{run.server_errors} 5xx, {len(run.failures)} failures",
                        flush=True,
                    )
            elapsed = time.monotonic() - started

            before = registry_rows(stack)
            listed = stack.visio("rooms", "list").stdout
            t0 = time.perf_counter()
            subprocess.run(  # not stack.visio: its 2-minute timeout is part of what is measured
                [*VISIO, "rooms", "rebuild"],
                env=stack.env,
                cwd=ROOT,
                capture_output=True,
                check=True,
                timeout=1800,
            )
            rebuild_s = time.perf_counter() - t0
            after = registry_rows(stack)
            relisted = stack.visio("rooms", "list").stdout
            # The rows decide; `rooms list` also prints each room's next occurrence, which
            # the minutes a rebuild takes can move on: its lines are saved, not judged.
            rebuild_ok = before == after
            list_changed = sorted(set(listed.splitlines()) ^ set(relisted.splitlines()))
            if not rebuild_ok or list_changed:
                args_out = out / "rebuild-mismatch.json"
                out.mkdir(parents=True, exist_ok=True)
                args_out.write_text(
                    json.dumps(
                        {
                            "only-before": sorted(before - after),
                            "only-after": sorted(after - before),
                            "rooms-list-lines-changed": list_changed,
                        },
                        ensure_ascii=False,
                        indent=1,
                    )
                )
        finally:
            stack.stop()
            stock.terminate()
            stock.wait()
            if run.failures or not rebuild_ok:  # the server's side of every failure
                out.mkdir(parents=True, exist_ok=True)
                (out / "serve.log").write_text(stack.log_text())

    base = statistics.median(run.baseline) if run.baseline else float("nan")
    fuzz_median = statistics.median(run.fuzz_times) if run.fuzz_times else float("nan")
    kinds: dict[str, int] = {}
    for f in run.failures:
        kinds[f.kind] = kinds.get(f.kind, 0) + 1
    print(f"== {elapsed:.0f} s of fuzzing (seed {base_seed}) ==")
    print(f"bodies tried:     {run.tried}")
    print(f"accepted (2xx):   {run.accepted}")
    print(f"refused (4xx):    {run.refused}")
    print(f"5xx:              {run.server_errors}")
    print(f"over {LIMIT_S:.0f} s:         {run.slow}")
    print(f"server restarts:  {run.restarts}")
    print(f"answers by class: {dict(sorted(run.statuses.items()))}")
    print(f"also made:        {run.other_ops} (organizer's deletes, attendee's replies)")
    print(f"plain events read back with the same properties checked: {run.plain_checked}")
    print(f"slowest answer:   {run.slowest[0] * 1000:.0f} ms ({run.slowest[1]}): {run.slowest[2]}")
    print(
        f"baseline:         median {base * 1000:.1f} ms per well-formed Visio PUT "
        f"({len(run.baseline)} in this run)"
    )
    print(
        f"ratios:           slowest/baseline {run.slowest[0] / base:.1f}, "
        f"median fuzz PUT/baseline {fuzz_median / base:.2f}"
    )
    print(
        f"rooms rebuild:    {'same registry' if rebuild_ok else 'DIFFERENT registry'} "
        f"({len(after)} rooms, {rebuild_s:.1f} s)"
    )
    print(
        f"failures:         {len(run.failures)} {kinds} {'-> ' + str(out) if run.failures else ''}"
    )
    print("why bodies were refused (top 12):")
    for reason, count in run.reasons.most_common(12):
        print(f"  {count:6d}  {reason}")
    if run.signatures:
        print("distinct failures:")
        for signature, count in run.signatures.most_common():
            print(f"  {count:6d}  {signature}")
    return 0 if not run.failures and rebuild_ok else 1


if __name__ == "__main__":
    sys.exit(main())
