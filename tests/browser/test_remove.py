"""Issue 17, finding 3, on the page: the organizer's "Retirer", and what the removed person sees."""

from __future__ import annotations

from tests.browser.conftest import Browsers, book
from tests.browser.pages import join_as_guest, open_panel, open_room, state, wait_state
from tests.e2e.conftest import PASSWORD, DavUser
from tests.support.stack import Stack


def test_the_organizer_removes_a_guest_who_cannot_come_back_unless_let_in(
    stack: Stack, user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "remove.ics")  # no lobby: guests come straight in
    organizer_name = user.login.title()
    host = open_room(browsers.launch(), link)
    host.fill("#signin-login", user.login)
    host.fill("#signin-password", PASSWORD)
    host.click('[data-action="sign-in"]')
    wait_state(host, "joined")

    guest_browser = browsers.launch()
    guest = open_room(guest_browser, link)
    join_as_guest(guest, "Gaston")
    wait_state(guest, "joined")
    # A guest sees the organizer in the participants panel, but may remove nobody.
    open_panel(guest, "people")
    guest.wait_for_selector(f'[data-role="people"] [data-person="{organizer_name}"]')
    assert guest.locator('[data-action="remove"]').count() == 0

    entry = '[data-role="people"] [data-person="Gaston"]'
    open_panel(host, "people")
    host.click(f'{entry} [data-action="remove"]')
    wait_state(guest, "closed")
    assert guest.evaluate("document.body.dataset.closedReason") == "removed"
    notice = guest.locator('[data-role="notice"]')
    assert notice.inner_text() == "Vous avez été retiré de la réunion."
    host.wait_for_selector(entry, state="detached")

    # The same link again, in a fresh page and under another name: the lobby, not the room.
    back = open_room(guest_browser, link)
    join_as_guest(back, "Gaston bis")
    wait_state(back, "lobby")
    # The organizer's participants panel (still open) lists who waits, with the buttons.
    knock = '[data-role="lobby-entries"] [data-lobby][data-name="Gaston bis"]'
    host.wait_for_selector(knock)
    assert host.locator('[data-role="knock-count"]').inner_text() == "1"
    assert state(back) == "lobby"
    host.click(f'{knock} [data-action="admit"]')  # let back in by the organizer
    wait_state(back, "joined")


def test_the_removed_page_speaks_english_too(
    stack: Stack, user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "remove-en.ics")
    host = open_room(browsers.launch(lang="en"), link, lang="en")
    host.fill("#signin-login", user.login)
    host.fill("#signin-password", PASSWORD)
    host.click('[data-action="sign-in"]')
    wait_state(host, "joined")
    guest = open_room(browsers.launch(lang="en"), link, lang="en")
    join_as_guest(guest, "Grace")
    wait_state(guest, "joined")
    button = '[data-person="Grace"] [data-action="remove"]'
    open_panel(host, "people")
    host.wait_for_selector(button)
    assert host.get_attribute(button, "aria-label") == "Remove Grace from the meeting"
    host.click(button)
    wait_state(guest, "closed")
    notice = guest.locator('[data-role="notice"]').inner_text()
    assert notice == "You were removed from the meeting."
