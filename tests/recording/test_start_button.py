"""VISIO_RECORD_START=button: nothing is recorded until the organizer starts it in the room."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Browsers, book
from tests.browser.pages import join_as_guest, open_room, wait_state
from tests.e2e.conftest import PASSWORD, new_user
from tests.recording.media import holds, probe
from tests.recording.test_recorded_meeting import notices, segments, stopped
from tests.support.stack import Stack, wait_for


@pytest.fixture(scope="module")
def button_stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("button"), extra_env={"VISIO_RECORD_START": "button"})
    s.start()
    try:
        yield s
    finally:
        s.stop()


def recording_is(page: Page, on: bool) -> None:
    page.wait_for_function(
        "v => document.body.dataset.recording === v", arg="on" if on else "off", timeout=20000
    )
    assert page.locator('[data-role="recording-indicator"]').is_visible() is on


def test_the_organizer_starts_and_stops_the_recording(
    button_stack: Stack, browsers: Browsers
) -> None:
    organizer = new_user(button_stack)
    link = book(
        organizer,
        "button.ics",
        extra=f"ORGANIZER:mailto:{organizer.login}@example.org\n"
        "X-VISIO-LOBBY:FALSE\nX-VISIO-RECORD:TRUE",
    )
    host = open_room(browsers.launch("speech"), link)
    host.click('[data-action="accept-recording"]')
    host.fill("#signin-login", organizer.login)
    host.fill("#signin-password", PASSWORD)
    host.click('[data-action="sign-in"]')
    wait_state(host, "joined")
    guest = open_room(browsers.launch(), link, lang="en")
    guest.click('[data-action="accept-recording"]')
    join_as_guest(guest, "Gaston")
    wait_state(guest, "joined")
    for page in (host, guest):
        assert page.locator('[data-role="recording-indicator"]').is_hidden()

    guest.click('[data-action="start-recording"]')  # not the organizer: refused
    guest.wait_for_selector('[data-role="notice"][data-notice="recording_refused"]')
    assert segments(button_stack) == []

    host.click('[data-action="start-recording"]')
    recording_is(host, True)
    recording_is(guest, True)
    path = wait_for(lambda: segments(button_stack), what="a segment")[0]
    wait_for(lambda: holds(path, 2), timeout=60, interval=0.5, what="2 s with a voice recorded")

    host.click('[data-action="stop-recording"]')
    recording_is(host, False)
    recording_is(guest, False)
    mail = wait_for(lambda: notices(button_stack), timeout=20, what="the organizer's mail")[0]
    assert mail["To"] == f"{organizer.login}@example.org" and "/recordings/" in mail.get_content()
    assert stopped(button_stack, path)  # logged once the file was closed, before the mail
    got = probe(path)
    assert (got.width, got.height) == (1280, 720) and got.duration > 2, got
    assert got.loudest > 0.01 and got.corrupt == 0, got
    assert guest.evaluate("document.body.dataset.roomState") == "joined"
