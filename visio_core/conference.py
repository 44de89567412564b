"""The pure rewrite of a calendar resource into (or out of) a conference room.

Every function here takes icalendar objects and changes only the VEVENTs it is
given; nothing does I/O. The same rules serve PUT, MOVE, whole-calendar imports
and `visio rooms rebuild`, so an event comes out identical whichever path wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from icalendar import Calendar, Event
from icalendar.prop import vUri

from visio_core import i18n
from visio_core.categories import CategoryRules, RoomKind

ROOM_PROP = "X-VISIO-ROOM"
ROOM_NUMBER_PROP = "X-VISIO-ROOM-NUMBER"
ROOM_CLAIM_PROP = "X-VISIO-ROOM-CLAIM"
OUR_PROPS = (ROOM_PROP, ROOM_NUMBER_PROP, ROOM_CLAIM_PROP)
# What makes a copy the room's own: kept in the organizer's copy only. Attendees'
# copies and invitations keep the number (for the phone text), never these.
OWNER_PROPS = (ROOM_PROP, ROOM_CLAIM_PROP)

# The description block sits between two fixed marker lines, so it is found
# and replaced on every update whatever language wrote it.
BLOCK_START = "~~~~~~~~~~ Visio ~~~~~~~~~~"
BLOCK_END = "~~~~~~~~~~~~~~~~~~~~~~~~~~~"
_BLOCK_RE = re.compile(
    r"\n*" + re.escape(BLOCK_START) + r".*?(?:" + re.escape(BLOCK_END) + r"|\Z)\n*", re.DOTALL
)


@dataclass(frozen=True)
class ConferenceSpec:
    """Everything the rewrite writes into an event."""

    room_id: str
    room_number: str
    kind: RoomKind
    join_url: str
    join_prefix: str  # every link of ours starts with it (public URL + "/j/")
    language: str = i18n.DEFAULT_LANGUAGE
    dialin_number: str | None = None
    claim: str = ""  # tokens.room_claim for the organizer's copy

    @property
    def tel_uri(self) -> str | None:
        if not self.dialin_number:
            return None
        digits = "".join(c for c in self.dialin_number if c.isdigit() or c == "+")
        return f"tel:{digits},,{self.room_number}%23"


def vevents(cal: Calendar) -> list[Event]:
    return [c for c in cal.walk("VEVENT") if isinstance(c, Event)]


def master(cal: Calendar) -> Event | None:
    """The recurring master, or the first VEVENT of a resource holding only overrides."""
    events = vevents(cal)
    for ev in events:
        if "RECURRENCE-ID" not in ev:
            return ev
    return events[0] if events else None


def categories_of(ev: Event) -> list[str]:
    """Every category of every CATEGORIES line, read without changing the event.

    Not `ev.categories`: icalendar's getter adds an empty CATEGORIES to an event
    that has none and merges several lines into one, and a plain event must be
    stored as the client sent it.
    """
    words: list[str] = []
    for prop in _as_list(ev.get("CATEGORIES")):
        cats = getattr(prop, "cats", None)
        if isinstance(cats, list):
            words.extend(str(c) for c in cats)
        elif str(prop):
            words.append(str(prop))
    return words


def room_kind(cal: Calendar, rules: CategoryRules) -> RoomKind | None:
    """The master decides; a resource of overrides only asks any of them."""
    main = master(cal)
    if main is None:
        return None
    kind = rules.kind(categories_of(main))
    if kind is None and "RECURRENCE-ID" in main:
        for ev in vevents(cal):
            kind = kind or rules.kind(categories_of(ev))
    return kind


def room_claim(cal: Calendar) -> str:
    """The owner's mark a rewrite wrote (see tokens.room_claim), or ""."""
    for ev in vevents(cal):
        claim = str(ev.get(ROOM_CLAIM_PROP, "")).strip()
        if claim:
            return claim
    return ""


def forget_ownership(cal: Calendar) -> bool:
    """Remove the room id and claim from a copy that is not the organizer's."""
    changed = False
    for ev in vevents(cal):
        for name in OWNER_PROPS:
            if name in ev:
                ev.pop(name)
                changed = True
    return changed


def room_identity(cal: Calendar) -> tuple[str, str] | None:
    """(room id, room number) as a previous rewrite wrote them, for `rooms rebuild`."""
    for ev in vevents(cal):
        room_id = str(ev.get(ROOM_PROP, "")).strip()
        number = str(ev.get(ROOM_NUMBER_PROP, "")).strip()
        if room_id and number:
            return room_id, number
    return None


def _as_list(value: object) -> list[object]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_ours(uri: str, join_prefix: str, room_numbers: Iterable[str]) -> bool:
    if uri.startswith(join_prefix):
        return True
    if uri.lower().startswith("tel:"):
        return any(f",{n}%23" in uri or f",{n}#" in uri for n in room_numbers if n)
    return False


def without_block(description: str) -> str:
    """The user's own text of a DESCRIPTION: our block taken out, wherever it sits."""
    # Text the user wrote after the block stays a paragraph of its own.
    return _BLOCK_RE.sub("\n", description.replace("\r\n", "\n")).strip("\n")


def _strip_event(ev: Event, join_prefix: str, room_numbers: set[str]) -> bool:
    """Remove what a rewrite wrote into `ev`; whether anything was there.

    Touches nothing that is not ours: an event that never was a room comes out
    with the same properties in the same order.
    """
    changed = False
    room_numbers = room_numbers | {str(ev.get(ROOM_NUMBER_PROP, "")).strip()}
    links = _as_list(ev.get("CONFERENCE"))
    kept = [c for c in links if not _is_ours(str(c), join_prefix, room_numbers)]
    if len(kept) != len(links):
        ev.pop("CONFERENCE", None)
        for c in kept:
            ev.add("CONFERENCE", c)
        changed = True
    for name in ("URL", "LOCATION"):
        if str(ev.get(name, "")).startswith(join_prefix):
            ev.pop(name)
            changed = True
    description = ev.get("DESCRIPTION")
    if description is not None and BLOCK_START in str(description):
        cleaned = without_block(str(description))
        ev.pop("DESCRIPTION")
        if cleaned:
            ev.add("DESCRIPTION", cleaned)
        changed = True
    for name in OUR_PROPS:
        if name in ev:
            ev.pop(name)
            changed = True
    return changed


def description_block(spec: ConferenceSpec) -> str:
    lang = spec.language
    title = i18n.text(
        "block_title_audio" if spec.kind is RoomKind.AUDIO else "block_title_video", lang
    )
    lines = [BLOCK_START, title, i18n.text("block_join", lang, url=spec.join_url)]
    if spec.dialin_number and spec.tel_uri:
        lines.append(
            i18n.text("block_phone", lang, number=spec.dialin_number, room=spec.room_number)
        )
        lines.append(i18n.text("block_phone_oneclick", lang, tel=spec.tel_uri))
    lines.append(BLOCK_END)
    return "\n".join(lines)


def _apply_event(ev: Event, spec: ConferenceSpec) -> None:
    _strip_event(ev, spec.join_prefix, {spec.room_number})
    others = _as_list(ev.get("CONFERENCE"))
    ev.pop("CONFERENCE", None)
    # A list, so icalendar writes FEATURE=AUDIO,VIDEO unquoted (a multi-valued parameter).
    features: Any = ["AUDIO"] if spec.kind is RoomKind.AUDIO else ["AUDIO", "VIDEO"]
    ev.add(
        "CONFERENCE",
        vUri(spec.join_url),
        parameters={
            "VALUE": "URI",
            "FEATURE": features,
            "LABEL": i18n.text("join_label", spec.language),
        },
    )
    tel = spec.tel_uri
    if tel:
        ev.add(
            "CONFERENCE",
            vUri(tel),
            parameters={
                "VALUE": "URI",
                "FEATURE": "PHONE",
                "LABEL": i18n.text("phone_label", spec.language),
            },
        )
    for c in others:
        ev.add("CONFERENCE", c)
    if not str(ev.get("URL", "")).strip():
        ev.pop("URL", None)
        ev.add("URL", vUri(spec.join_url))
    if not str(ev.get("LOCATION", "")).strip():
        ev.pop("LOCATION", None)
        ev.add("LOCATION", spec.join_url)
    description = str(ev.get("DESCRIPTION", "")).rstrip("\n")
    ev.pop("DESCRIPTION", None)
    block = description_block(spec)
    ev.add("DESCRIPTION", f"{description}\n\n{block}" if description else block)
    ev.add(ROOM_PROP, spec.room_id)
    ev.add(ROOM_NUMBER_PROP, spec.room_number)
    if spec.claim:
        ev.add(ROOM_CLAIM_PROP, spec.claim)


def apply_room(cal: Calendar, spec: ConferenceSpec) -> Calendar:
    """Write the room into every VEVENT (master and overrides); returns `cal`, changed."""
    for ev in vevents(cal):
        _apply_event(ev, spec)
    return cal


def strip_room(cal: Calendar, join_prefix: str) -> Calendar:
    """Remove everything `apply_room` wrote; other CONFERENCE links are kept."""
    remove_room(cal, join_prefix)
    return cal


def remove_room(cal: Calendar, join_prefix: str) -> bool:
    """`strip_room`, saying whether anything of a room was there to remove."""
    changed = False
    for ev in vevents(cal):
        changed = _strip_event(ev, join_prefix, set()) or changed
    return changed


def has_room_properties(cal: Calendar) -> bool:
    return any(ROOM_PROP in ev for ev in vevents(cal))
