"""Issue 17, findings 1 and 2: a room id written into an event grants nothing.

On the real stack, as the attacker of the review did it: an account holder who
was never invited stores, in their own calendar, a copy naming someone else's
room; the portal, the delivered copies and `visio rooms rebuild` must all keep
the room with the organizer's own copy.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import requests

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack, wait_for

TIMEOUT = 60


def meeting(uid: str, organizer: DavUser, *attendees: DavUser, extra: str = "") -> str:
    people = [f"ORGANIZER;CN=Org:mailto:{organizer.login}@example.org"] + [
        f"ATTENDEE;CN={a.login};RSVP=TRUE:mailto:{a.login}@example.org" for a in attendees
    ]
    return ics.event(uid=uid, summary="Conseil", extra="\n".join([*people, extra]).strip())


def prop(text: str, name: str) -> str:
    found = re.search(rf"^{name}:(.*)$", text.replace("\r\n ", ""), re.MULTILINE)
    return found.group(1).strip() if found else ""


def signed_in(stack: Stack, login: str) -> requests.Session:
    web = requests.Session()
    page = web.get(stack.web_url + "login", timeout=TIMEOUT).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    r = web.post(
        stack.web_url + "login",
        data={"csrf": csrf.group(1), "login": login, "password": PASSWORD, "tz": "Europe/Paris"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 303, r.text
    return web


def calendar_path(user: DavUser) -> str:
    return "/" + user.calendar.split("/", 3)[3]  # "/login/calendar/"


def test_a_forged_copy_is_stored_without_the_room_and_opens_nothing(stack: Stack) -> None:
    alice, bob, mallory = new_user(stack), new_user(stack), new_user(stack)
    uid = f"forged-{uuid.uuid4().hex[:8]}"
    assert alice.put(f"{uid}.ics", meeting(uid, alice, bob)).status_code == 201
    organizer_copy = alice.get(f"{uid}.ics").text
    room_id, number = (
        prop(organizer_copy, "X-VISIO-ROOM"),
        prop(organizer_copy, "X-VISIO-ROOM-NUMBER"),
    )
    assert room_id and number.isdigit()
    assert prop(organizer_copy, "X-VISIO-ROOM-CLAIM")  # the organizer's copy is marked

    # Bob's delivered copy has his personal link and the number, not the room's identity.
    delivered = wait_for(
        lambda: (r := bob.get(f"{uid}.ics")).status_code == 200 and r.text, timeout=TIMEOUT
    )
    assert "/j/" in ics.join_link(delivered)
    assert ics.join_link(delivered) != ics.join_link(organizer_copy)
    assert not prop(delivered, "X-VISIO-ROOM") and not prop(delivered, "X-VISIO-ROOM-CLAIM")

    # Mallory was never invited: she writes the room id she saw into her own copy.
    forged = meeting(
        uid, alice, mallory, extra=f"X-VISIO-ROOM:{room_id}\nX-VISIO-ROOM-NUMBER:{number}"
    )
    assert mallory.put(f"{uid}.ics", forged).status_code in (201, 204)
    stored = mallory.get(f"{uid}.ics").text
    assert not prop(stored, "X-VISIO-ROOM"), "a room id a copy does not own is not kept"

    # The portal's instant page gives her nothing, under any of her hrefs.
    web = signed_in(stack, mallory.login)
    for href in (calendar_path(mallory) + f"{uid}.ics", calendar_path(alice) + f"{uid}.ics"):
        r = web.get(stack.web_url + "instant", params={"href": href}, timeout=TIMEOUT)
        assert r.status_code == 404, href
        assert ics.join_link(organizer_copy) not in r.text

    # Her own Visio meeting with the same room id gets a room of its own.
    own = f"own-{uid}"
    body = ics.event(uid=own, extra=f"X-VISIO-ROOM:{room_id}\nX-VISIO-ROOM-NUMBER:{number}")
    assert mallory.put(f"{own}.ics", body).status_code == 201
    mine = mallory.get(f"{own}.ics").text
    assert prop(mine, "X-VISIO-ROOM") not in ("", room_id)
    assert prop(mine, "X-VISIO-ROOM-NUMBER") != number

    # The organizer still enters her room from the portal.
    r = signed_in(stack, alice.login).get(
        stack.web_url + "instant",
        params={"href": calendar_path(alice) + f"{uid}.ics"},
        timeout=TIMEOUT,
    )
    assert r.status_code == 200 and ics.join_link(organizer_copy) in r.text


def plant(stack: Stack, user: DavUser, name: str, text: str) -> Path:
    """A file put straight into a calendar's folder (a restored backup, an old copy)."""
    folder = stack.data_dir / "collections" / "collection-root" / calendar_path(user).strip("/")
    path = folder / name
    path.write_text(text.replace("\r\n", "\n").replace("\n", "\r\n"))
    return path


def test_rebuild_keeps_each_room_with_its_organizer_and_names_the_forgeries(
    stack: Stack,
) -> None:
    alice, mallory, eve = new_user(stack), new_user(stack), new_user(stack)
    uid = f"rebuild-{uuid.uuid4().hex[:8]}"
    assert alice.put(f"{uid}.ics", meeting(uid, alice)).status_code == 201
    original = alice.get(f"{uid}.ics").text
    room_id, number = prop(original, "X-VISIO-ROOM"), prop(original, "X-VISIO-ROOM-NUMBER")
    link = ics.join_link(original)

    # Copies that claim Alice's room as their own owners' meetings: one with Alice's
    # mark copied, one with no mark (as events written before marks existed).
    copied = original.replace(f"mailto:{alice.login}@", f"mailto:{mallory.login}@")
    plant(stack, mallory, "a-first.ics", copied)
    unmarked = "\n".join(
        line
        for line in copied.replace(f"mailto:{mallory.login}@", f"mailto:{eve.login}@").split("\r\n")
        if not line.startswith("X-VISIO-ROOM-CLAIM")
    )
    plant(stack, eve, "a-first.ics", unmarked)

    outputs = []
    for _ in range(2):  # the same answer every time: nothing depends on reading order
        done = stack.visio("rooms", "rebuild", check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(sorted(line for line in done.stdout.splitlines() if room_id in line))
        assert requests.get(link, timeout=TIMEOUT).status_code == 200
        listing = stack.visio("rooms", "list").stdout.splitlines()
        owners = [line.split("\t")[2] for line in listing if line.split("\t")[0] == number]
        assert owners == [alice.login], listing
    assert outputs[0] == outputs[1]
    reported = "\n".join(outputs[0])
    assert f"{mallory.login}/" in reported and f"{eve.login}/" in reported

    # Alice's next save keeps her room (it was not handed to anyone else).
    assert alice.put(f"{uid}.ics", meeting(uid, alice)).status_code in (201, 204)
    assert prop(alice.get(f"{uid}.ics").text, "X-VISIO-ROOM") == room_id
