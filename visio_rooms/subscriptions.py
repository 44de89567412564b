"""What each page receives, and which camera layers their publishers need to send.

A page that tells what it shows (`view`, docs/signaling.md) receives only that:
the high layer in its main window and big tiles, the low layer in thumbnails,
nothing for cameras off screen (sfu/selection.py). A page that never sends a
view (an older client) receives everyone, as before. Pages on a weak link (the
receiver's REMB estimate below what the view needs) get the low layer in the
main window too, unless VISIO_TRUST_BWE=no. Dynacast: a layer nobody receives
is paused at its publisher.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from visio_rooms.participant import Member, Participant
from visio_rooms.sfu.forwarding import Publication
from visio_rooms.sfu.selection import (
    CAMERA,
    CAMERA_LOW,
    SCREEN,
    Choice,
    View,
    choose,
)

if TYPE_CHECKING:
    from visio_rooms.rooms import LiveRoom


def published(members: Mapping[str, Member], skip: str) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for q in members.values():
        if q.id == skip:
            continue
        out[q.id] = {
            source
            for source, pub in q.publications.items()
            if source in (CAMERA, CAMERA_LOW) or (source == SCREEN and pub.active)
        }
    return out


def decide(room: LiveRoom, p: Participant, now: float) -> Choice | None:
    """The view's choice for `p` now (None: no view, receive everyone)."""
    if p.view is None:
        return None
    degraded = p.choice.degraded if p.choice else False
    estimate = p.bandwidth.usable(p.estimate(), degraded, now) if room.trust_bwe else None
    rates = {
        (q.id, source): pub.rate
        for q in room.participants.values()
        for source, pub in q.publications.items()
        if pub.kind == "video" and pub.rate > 0
    }
    return choose(
        p.view,
        published(room.participants, p.id),
        estimate,
        degraded,
        rates,
    )


def set_view(p: Participant, view: View, now: float) -> None:
    grew = (
        p.view is None
        or len(view.tiles) > len(p.view.tiles)
        or (view.main is not None and (p.view.main is None or p.view.main.id != view.main.id))
    )
    if grew:
        p.bandwidth.view_at = now
    p.view = view


def by_choice(room: LiveRoom, choice: Choice) -> dict[str, list[Publication]]:
    def pub(pid: str, source: str) -> Publication | None:
        q = room.participants.get(pid)
        return q.publications.get(source) if q is not None else None

    main = pub(*choice.main) if choice.main else None
    cameras = [x for x in (pub(pid, source) for pid, source in choice.tiles) if x is not None]
    return {"main": [main] if main is not None else [], "camera": cameras}


def everyone(room: LiveRoom, p: Participant) -> dict[str, list[Publication]]:
    """Today's behaviour for a page without a view: main follows the speaker (or a
    shared screen), every other camera in a thumbnail, in the high layer."""
    main = main_source(room, p)
    return {
        "main": [main] if main is not None else [],
        # The camera in the main window is not sent a second time for its
        # thumbnail: the page shows the main window's stream there too.
        "camera": [
            q.publications[CAMERA]
            for q in room.participants.values()
            if q.id != p.id and CAMERA in q.publications and q.publications[CAMERA] is not main
        ],
    }


def main_source(room: LiveRoom, p: Participant) -> Publication | None:
    if room.screen_owner and room.screen_owner != p.id:
        sharer = room.participants.get(room.screen_owner)
        pub = sharer.publications.get(SCREEN) if sharer else None
        if pub is not None and pub.active:
            return pub
    order = [room.speaker, p.last_main, *room.participants]
    for pid in order:
        q = room.participants.get(pid) if pid else None
        if q is not None and q.id != p.id and CAMERA in q.publications:
            p.last_main = q.id
            return q.publications[CAMERA]
    return None


def demand(room: LiveRoom) -> dict[str, tuple[bool, bool]]:
    """Per page with a camera: (high layer received by someone, low layer received).

    Read from who is attached to each publication, so the recorder and old pages
    (which take the high layer) count as well as views."""
    out: dict[str, tuple[bool, bool]] = {}
    for q in room.participants.values():
        if not isinstance(q, Participant) or CAMERA_LOW not in q.publications:
            continue  # no second layer: nothing to pause (older pages send one only)
        high = q.publications.get(CAMERA)
        low = q.publications[CAMERA_LOW]
        out[q.id] = (bool(high is not None and high.sinks), bool(low.sinks))
    return out
