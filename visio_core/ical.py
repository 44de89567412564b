"""Parsing and serialising calendar resources with icalendar (not vobject).

Radicale parses with vobject, which keeps only the first comma-separated part of
any property it does not know (CONFERENCE tel: URIs, X- values, even unescaped
commas in SUMMARY). Every calendar resource we store goes through here instead.
"""

from __future__ import annotations

import re
from collections import defaultdict

from icalendar import Calendar, Component

OBJECT_TYPES = ("VEVENT", "VTODO", "VJOURNAL")

# RFC 5545 3.1 and 3.3.11: no CONTROL character (U+0000-U+001F but HTAB, and DEL)
# appears in a calendar; line breaks are CRLF (a bare LF, as many clients send,
# is read the same). A carriage return that ends no line is refused with them:
# other clients read it as a line break, or fail.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)")
_NAMES = {0x00: "NUL", 0x0D: "a carriage return that ends no line", 0x1B: "ESC", 0x7F: "DEL"}
_NAME = re.compile(r"[A-Za-z0-9-]+")
_METHOD = re.compile(r"^METHOD[;:]", re.IGNORECASE | re.MULTILINE)


_CONTROL_IN_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def control_in_text(value: str) -> str | None:
    """"U+0000" for the first control character of a typed value, else None.

    Line breaks and tabs are text here: icalendar escapes them when it writes.
    """
    found = _CONTROL_IN_TEXT.search(value)
    return f"U+{ord(found.group(0)):04X}" if found else None


def decode(raw: bytes, charset: str) -> str:
    """A request body as text; ValueError (a sentence) when it is not `charset` text.

    Radicale would fall back to ISO-8859-1, which reads any byte: one stray byte
    would turn every accent of a UTF-8 body into two wrong characters, silently.
    """
    try:
        return raw.decode(charset)
    except LookupError:
        raise ValueError(f"This server does not know the charset {charset!r}.") from None
    except UnicodeDecodeError as e:
        raise ValueError(
            f"The body is not valid {charset} text (byte 0x{raw[e.start]:02X} at offset "
            f"{e.start}); send UTF-8, or name its charset in the Content-Type."
        ) from None


def control_character(text: str) -> str | None:
    """A sentence naming the first control character in `text`, or None when it has none."""
    found = _CONTROL.search(text)
    if found is None:
        return None
    pos = found.start()
    code = ord(text[pos])
    line_no = text.count("\n", 0, pos) + 1
    # The property is named on the first line of the folded content line.
    start = text.rfind("\n", 0, pos) + 1
    while start > 0 and text[start : start + 1] in (" ", "\t"):
        start = text.rfind("\n", 0, start - 1) + 1
    name = _NAME.match(text, start)
    where = f"Line {line_no}" + (f" ({name.group(0).upper()})" if name else "")
    what = _NAMES.get(code, "a control character")
    return (
        f"{where} holds {what} (U+{code:04X}), which other calendar clients cannot read; "
        "remove it and send the calendar again."
    )


def as_stored(body: str) -> str | None:
    """A one-event body as it is stored when nothing of it changes: the client's own
    text with CRLF line breaks; None when it holds a METHOD (removed on storing)."""
    if _METHOD.search(body):
        return None
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    return text if text.endswith("\r\n") else text + "\r\n"


def parse(text: str) -> Calendar:
    """The calendar in `text`; ValueError for anything icalendar cannot read."""
    try:
        cal = Calendar.from_ical(text)
    except (AttributeError, IndexError, KeyError, TypeError) as e:
        # icalendar lets these through on some broken input (a VTIMEZONE with two TZIDs)
        raise ValueError(f"unreadable calendar: {type(e).__name__}: {e}") from e
    if not isinstance(cal, Calendar):
        raise ValueError("not a VCALENDAR")
    return cal


def serialize(cal: Calendar) -> str:
    data: bytes = cal.to_ical()
    return data.decode("utf-8")


def unfold(text: str) -> str:
    """Content lines joined back (RFC 5545 3.1), so a value can be searched as one string."""
    return text.replace("\r\n ", "").replace("\r\n\t", "")


def uid_of(cal: Calendar) -> str:
    for comp in cal.subcomponents:
        if comp.name in OBJECT_TYPES and "UID" in comp:
            return str(comp["UID"])
    return ""


def _tzids(comp: Component) -> set[str]:
    found: set[str] = set()
    for value in comp.property_items(recursive=True, sorted=False):
        params = getattr(value[1], "params", None)
        if params and "TZID" in params:
            found.add(str(params["TZID"]))
    return found


def split_by_uid(whole: Calendar) -> dict[str, Calendar]:
    """One calendar per UID, each with the VTIMEZONEs its components use (imports).

    A calendar holding a single UID comes back whole (the same object, changed:
    METHOD removed), its own top-level properties kept.
    """
    whole.pop("METHOD", None)  # RFC 4791 4.1: stored resources carry no METHOD
    uids = {str(c.get("UID", "")) for c in whole.subcomponents if c.name in OBJECT_TYPES}
    if len(uids) == 1:
        return {uids.pop(): whole}
    timezones = {str(c.get("TZID")): c for c in whole.subcomponents if c.name == "VTIMEZONE"}
    groups: dict[str, list[Component]] = defaultdict(list)
    for comp in whole.subcomponents:
        if comp.name in OBJECT_TYPES:
            groups[str(comp.get("UID", ""))].append(comp)
    result: dict[str, Calendar] = {}
    for uid, comps in groups.items():
        cal = Calendar()
        for name in ("VERSION", "PRODID", "CALSCALE"):
            if name in whole:
                cal.add(name, whole[name])
        needed: set[str] = set()
        for comp in comps:
            needed |= _tzids(comp)
        for tzid in sorted(needed):
            if tzid in timezones:
                cal.add_component(timezones[tzid])
        for comp in comps:
            cal.add_component(comp)
        result[uid] = cal
    return result


def fold(line: str, limit: int = 75) -> str:
    """One content line folded at `limit` octets (RFC 5545 3.1), never inside a character."""
    if len(line.encode("utf-8")) <= limit:
        return line
    parts: list[str] = []
    current: list[str] = []
    size = 0
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > limit:
            parts.append("".join(current))
            current, size = [" "], 1
        current.append(ch)
        size += width
    parts.append("".join(current))
    return "\r\n".join(parts)


class Template:
    """A serialised calendar in which a marker string is replaced per recipient.

    Lines without the marker keep their folded text; only lines that change are
    folded again, so a 200-recipient fan-out serialises the calendar once.
    """

    def __init__(self, text: str, marker: str) -> None:
        self.marker = marker
        self.lines: list[tuple[str, str]] = []  # (unfolded, as folded in `text`)
        for folded in text.replace("\r\n ", "\x00 ").replace("\r\n\t", "\x00\t").split("\r\n"):
            if folded:
                original = folded.replace("\x00", "\r\n")
                self.lines.append((folded.replace("\x00 ", "").replace("\x00\t", ""), original))

    def render(self, value: str) -> str:
        out = [
            fold(line.replace(self.marker, value)) if self.marker in line else original
            for line, original in self.lines
        ]
        return "\r\n".join(out) + "\r\n"
