"""What one browser does in the room and the other one sees: controls, chat, screen, links."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    enter_personal,
    join_as_guest,
    main_speaker,
    open_panel,
    open_room,
    participant_video,
    state,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack, wait_for


def two_in_a_room(browsers: Browsers, link: str) -> tuple[Page, Page]:
    alice = open_room(browsers.launch("speech"), link)
    join_as_guest(alice, "Alice")
    bob = open_room(browsers.launch(), link, lang="en")
    join_as_guest(bob, "Bob")
    wait_playing(bob, participant_video("Alice"))
    return alice, bob


def test_mute_camera_off_and_chat_are_seen_by_the_other(user: DavUser, browsers: Browsers) -> None:
    alice, bob = two_in_a_room(browsers, book(user, "controls.ics"))

    alice.click('[data-action="mute"]')
    bob.wait_for_selector(f'{participant_video("Alice")}[data-muted="true"]', timeout=10000)
    bob.wait_for_selector('[data-person="Alice"][data-muted="true"]')
    alice.click('[data-action="camera"]')
    bob.wait_for_selector(f'{participant_video("Alice")}[data-camera="off"]', timeout=10000)
    alice.click('[data-action="mute"]')
    bob.wait_for_selector(f'{participant_video("Alice")}[data-muted="false"]', timeout=10000)

    alice.keyboard.press("c")  # the chat shortcut opens the Discussion panel
    alice.fill("#chat-text", "Le budget est en pièce jointe")
    alice.click('[data-action="send"]')
    # Bob's panel is closed: the toolbar counts the unread message, opening reads it.
    bob.wait_for_selector('[data-role="unread"]:not([hidden])', timeout=10000)
    assert bob.locator('[data-role="unread"]').inner_text() == "1"
    assert "1 unread" in str(bob.get_attribute('[data-action="chat"]', "aria-label"))
    open_panel(bob, "chat")
    line = bob.locator('[data-role="chat"] li', has_text="Le budget est en pièce jointe")
    line.wait_for(timeout=10000)
    assert line.inner_text().startswith("Alice")
    assert bob.locator('[data-role="unread"]').is_hidden()


def test_screen_share_takes_the_main_window_while_it_lasts(
    user: DavUser, browsers: Browsers
) -> None:
    alice, bob = two_in_a_room(browsers, book(user, "screen.ics"))
    wait_playing(bob, 'video[data-role="main"]')
    assert bob.get_attribute('video[data-role="main"]', "data-source") == "camera"

    alice.click('[data-action="share"]')  # a click: getDisplayMedia needs a user gesture
    bob.wait_for_selector(
        'video[data-role="main"][data-source="screen"][data-speaker="Alice"]', timeout=15000
    )
    wait_playing(bob, 'video[data-role="main"]')
    wait_playing(bob, participant_video("Alice"))  # her camera stays in the thumbnails

    alice.click('[data-action="share"]')  # stop sharing
    bob.wait_for_selector('video[data-role="main"][data-source="camera"]', timeout=15000)
    assert main_speaker(bob) == "Alice"
    wait_playing(bob, 'video[data-role="main"]')


def test_personal_link_joins_directly_under_the_attendees_name(
    stack: Stack, user: DavUser, browsers: Browsers
) -> None:
    guest = new_user(stack)  # an attendee with an account: the copy lands in their calendar
    address = f"{guest.login}@example.org"
    uid = str(uuid.uuid4())
    link = book(
        user,
        "invited.ics",
        uid=uid,
        extra=(
            f"ORGANIZER:mailto:{user.login}@example.org\n"
            f"ATTENDEE;CN=Gaston Lagaffe;RSVP=TRUE:mailto:{address}"
        ),
    )
    # The attendee's copy (with the personal link in it) is delivered to their calendar.
    copy = wait_for(lambda: (r := guest.get(f"{uid}.ics")).ok and r, what="attendee copy")
    personal = ics.join_link(copy.text)
    assert personal != link

    page = open_room(browsers.launch(), personal)
    # The pre-join screen names the attendee and asks no name; then no lobby, although
    # the lobby is on.
    wait_state(page, "prejoin")
    assert page.locator("#guest-name").is_hidden() and page.locator("#signin-login").is_hidden()
    assert guest.login.title() in page.locator('[data-role="joining-as"]').inner_text()
    enter_personal(page)
    wait_state(page, "joined")
    assert page.locator('[data-role="prejoin"]').is_hidden()
    host = open_room(browsers.launch(), link)
    join_as_guest(host, "Hôte")  # a guest by name knocks, and the attendee lets them in
    wait_state(host, "lobby")
    page.click("[data-knock] >> text=Faire entrer")
    wait_state(host, "joined")
    # The address is an account's: the room names that account, not the event's CN.
    wait_playing(host, participant_video(guest.login.title()))


@pytest.fixture(scope="module")
def small_stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("small"), extra_env={"VISIO_ROOM_CAPACITY": "1"}).start()
    try:
        yield s
    finally:
        s.stop()


def test_the_participant_past_the_capacity_is_told_the_room_is_full(
    small_stack: Stack, browsers: Browsers
) -> None:
    link = book(new_user(small_stack), "full.ics")
    first = open_room(browsers.launch(), link)
    join_as_guest(first, "Première")
    wait_state(first, "joined")
    late = open_room(browsers.launch(), link, lang="en")
    join_as_guest(late, "Late")
    wait_state(late, "closed")
    assert late.evaluate("document.body.dataset.closedReason") == "full"
    notice = late.locator('[data-role="notice"]')
    assert notice.get_attribute("data-notice") == "closed_full" and notice.inner_text()
    assert state(first) == "joined"
