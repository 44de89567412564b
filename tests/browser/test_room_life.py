"""The room follows the calendar and survives: waiting, lobby, closure, reload, restart."""

from __future__ import annotations

import datetime as dt

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    join_as_guest,
    open_room,
    participant_video,
    state,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import PASSWORD, DavUser
from tests.support.stack import Stack


def test_audio_room_has_no_video_and_shows_who_speaks(user: DavUser, browsers: Browsers) -> None:
    link = book(user, "audio.ics", categories="Audio")
    alice = open_room(browsers.launch("speech"), link)
    join_as_guest(alice, "Alice")
    bob = open_room(browsers.launch("silence"), link, lang="en")
    join_as_guest(bob, "Bob")
    wait_state(alice, "joined")
    wait_state(bob, "joined")
    bob.wait_for_selector('[data-participant="Alice"][data-speaking="true"]', timeout=15000)
    alice.wait_for_selector('[data-participant="Bob"]')
    assert bob.locator("video").count() == 0 and alice.locator("video").count() == 0
    assert bob.locator('[data-action="leave"]').inner_text() == "Leave"


def test_waiting_page_counts_down_then_lets_the_person_in(
    user: DavUser, browsers: Browsers
) -> None:
    # VISIO_EARLY_JOIN_MINUTES is 15: this room opens 6 s from now.
    link = book(user, "soon.ics", starts_in=dt.timedelta(minutes=15, seconds=6))
    page = open_room(browsers.launch(), link)
    assert state(page) == "waiting"
    assert page.locator('[data-role="countdown"]').inner_text().startswith("La salle ouvre dans")
    join_as_guest(page, "Early Bird")
    wait_state(page, "waiting")
    wait_state(page, "joined", timeout=20)


def test_lobby_admit_and_refuse(stack: Stack, user: DavUser, browsers: Browsers) -> None:
    link = book(user, "lobby.ics", extra="")
    host = open_room(browsers.launch(), link)
    # The organizer signs in with the account and goes straight in.
    host.fill("#signin-login", user.login)
    host.fill("#signin-password", PASSWORD)
    host.click('[data-action="sign-in"]')
    wait_state(host, "joined")

    guest = open_room(browsers.launch(), link)
    join_as_guest(guest, "Guest One")
    wait_state(guest, "lobby")
    guest.wait_for_selector('[data-role="lobby-wait"]:not([hidden])')
    host.click("[data-knock] >> text=Faire entrer")
    wait_state(guest, "joined")
    wait_playing(host, participant_video("Guest One"))

    intruder = open_room(browsers.launch(), link)
    join_as_guest(intruder, "Intruder")
    wait_state(intruder, "lobby")
    host.locator('[data-knock][data-name="Intruder"] [data-action="refuse"]').click()
    wait_state(intruder, "closed")
    assert intruder.evaluate("document.body.dataset.closedReason") == "refused"


def test_deleting_the_event_closes_the_room_within_seconds(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "gone.ics")
    a = open_room(browsers.launch(), link)
    join_as_guest(a, "Anne")
    b = open_room(browsers.launch(), link)
    join_as_guest(b, "Benoît")
    wait_state(a, "joined")
    wait_playing(b, participant_video("Anne"))
    assert user.session.delete(user.url("gone.ics"), timeout=30).status_code in (200, 204)
    for page in (a, b):
        wait_state(page, "closed", timeout=10)
        assert page.evaluate("document.body.dataset.closedReason") == "deleted"


def test_reload_and_backend_restart_rejoin_by_themselves(
    stack: Stack, user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "survive.ics")
    a = open_room(browsers.launch(), link)
    join_as_guest(a, "Agathe")
    b = open_room(browsers.launch(), link)
    join_as_guest(b, "Basile")
    wait_playing(a, participant_video("Basile"))

    b.reload()  # same tab: back in under the same name, no form
    wait_state(b, "joined", timeout=10)
    wait_playing(b, participant_video("Agathe"))
    wait_playing(a, participant_video("Basile"))

    stack.restart()
    for page, other in ((a, "Basile"), (b, "Agathe")):
        wait_state(page, "joined", timeout=30)
        wait_playing(page, participant_video(other), timeout=30)
