"""Two, then three browsers in a video room: each sees the others; the speaker gets the main."""

from __future__ import annotations

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    join_as_guest,
    main_speaker,
    open_room,
    participant_video,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import DavUser


def test_three_browsers_see_each_other_and_the_speaker_fills_the_main_window(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "video.ics")
    bob = open_room(browsers.launch("silence"), link)
    join_as_guest(bob, "Bob")
    wait_state(bob, "joined")
    carol = open_room(browsers.launch("silence"), link)
    join_as_guest(carol, "Carol")
    wait_state(carol, "joined")

    # Two browsers: each one's video plays at the other's.
    wait_playing(bob, participant_video("Carol"))
    wait_playing(carol, participant_video("Bob"))
    wait_playing(carol, 'video[data-role="main"]')
    assert main_speaker(carol) == "Bob"  # the only other one, while nobody talks

    # A third, who talks: everyone sees everyone, and the main window goes to her.
    alice = open_room(browsers.launch("speech"), link)
    join_as_guest(alice, "Alice")
    wait_state(alice, "joined")
    for page, others in (
        (alice, ("Bob", "Carol")),
        (bob, ("Alice", "Carol")),
        (carol, ("Alice", "Bob")),
    ):
        for name in others:
            wait_playing(page, participant_video(name))
    for page in (bob, carol):
        page.wait_for_function(
            "() => document.querySelector('video[data-role=main]').dataset.speaker === 'Alice'",
            timeout=15000,
        )
        wait_playing(page, 'video[data-role="main"]')
    assert bob.locator("video[data-participant]").count() == 2
    assert alice.locator('video[data-role="self"]').count() == 1
