"""What one person does on the room page and the others see: pin, pages, hand, keyboard,
camera off or missing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, FLAGS, Browsers, book
from tests.browser.pages import (
    focused_action,
    join_as_guest,
    main_speaker,
    open_panel,
    open_room,
    panel,
    participant_video,
    person_row,
    sign_in,
    tile,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.support.stack import Stack

MAIN = 'video[data-role="main"]'


def join(
    browsers: Browsers, link: str, name: str, voice: str = "silence", lang: str = "fr"
) -> Page:
    page = open_room(browsers.launch(voice, lang=lang), link, lang=lang)
    join_as_guest(page, name)
    wait_state(page, "joined")
    return page


def without_camera(browsers: Browsers) -> Browser:
    """Chromium with no camera at all (its fake device count set to 0), a microphone."""
    fake = "--use-fake-device-for-media-stream"
    flags = [f"{fake}=device-count=0" if f == fake else f for f in FLAGS]
    flags.append(f"--use-file-for-fake-audio-capture={browsers.sounds['silence']}")
    browser = browsers.pw.chromium.launch(executable_path=CHROMIUM, args=flags)
    browsers.open.append(browser)
    return browser


def test_a_pinned_person_stays_in_the_main_window_while_another_speaks(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "pin.ics")
    alice = join(browsers, link, "Alice Martin")
    join(browsers, link, "Bruno Petit")
    join(browsers, link, "Chloé Durand", voice="speech")
    # Chloé talks: she is the active speaker, in Alice's main window.
    alice.wait_for_selector(f'{MAIN}[data-speaker="Chloé Durand"]', timeout=30_000)

    alice.click(f'{tile("Bruno Petit")} [data-action="pin"]')
    alice.wait_for_selector(f'{MAIN}[data-speaker="Bruno Petit"]', timeout=10_000)
    expect(alice.locator(f'{tile("Bruno Petit")} [data-action="pin"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_playing(alice, MAIN)
    # Chloé still speaks, and Bruno stays.
    alice.wait_for_selector(f'{tile("Chloé Durand")}[data-speaking="true"]', timeout=20_000)
    assert main_speaker(alice) == "Bruno Petit"

    alice.click('[data-role="main-tile"] [data-action="unpin"]')
    alice.wait_for_selector(f'{MAIN}[data-speaker="Chloé Durand"]', timeout=20_000)
    expect(alice.locator('[data-role="main-tile"] [data-action="unpin"]')).to_have_count(0)
    wait_playing(alice, MAIN)

    # The same from the Participants panel.
    open_panel(alice, "people")
    alice.click(f'{person_row("Bruno Petit")} [data-action="pin"]')
    alice.wait_for_selector(f'{MAIN}[data-speaker="Bruno Petit"]', timeout=10_000)
    expect(alice.locator(f'{person_row("Bruno Petit")} [data-action="pin"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    wait_playing(alice, MAIN)


@pytest.fixture(scope="module")
def two_thumbs_stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(tmp_path_factory.mktemp("thumbs"), extra_env={"VISIO_VISIBLE_THUMBNAILS": "2"})
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_thumbnails_come_in_pages_and_anyone_can_be_pinned_from_the_panel(
    two_thumbs_stack: Stack, browsers: Browsers
) -> None:
    link = book(new_user(two_thumbs_stack), "pages.ics")
    others = ["Bruno Petit", "Chloé Durand", "Denis Roy"]
    alice = join(browsers, link, "Alice Martin")
    alice.set_viewport_size({"width": 1280, "height": 800})
    for name in others:
        join(browsers, link, name)
    alice.wait_for_function(
        "() => document.querySelectorAll('[data-role=\"people\"] li').length === 4", timeout=20_000
    )
    tiles = alice.locator('[data-role="tiles"] figure.tile')
    expect(tiles).to_have_count(2)
    expect(alice.locator('[data-role="page-of"]')).to_have_text("1 / 2")
    first = {str(tiles.nth(i).get_attribute("data-person")) for i in range(2)}
    alice.click('[data-action="page-next"]')
    expect(alice.locator('[data-role="page-of"]')).to_have_text("2 / 2")
    expect(tiles).to_have_count(1)
    second = {str(tiles.nth(i).get_attribute("data-person")) for i in range(tiles.count())}
    assert first | second == set(others) and not first & second

    # Someone on the first page, pinned from the panel: in the main window, moving.
    hidden = sorted(first)[0]
    open_panel(alice, "people")
    alice.click(f'{person_row(hidden)} [data-action="pin"]')
    alice.wait_for_selector(f'{MAIN}[data-speaker="{hidden}"]', timeout=10_000)
    wait_playing(alice, MAIN, timeout=30)


def test_a_raised_hand_is_seen_and_the_organizer_lowers_it(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "hand.ics")
    host = open_room(browsers.launch(), link)
    sign_in(host, user.login, PASSWORD)
    wait_state(host, "joined")
    alice = join(browsers, link, "Alice Martin")
    bruno = join(browsers, link, "Bruno Petit", lang="en")
    bruno.wait_for_selector(tile("Alice Martin"), timeout=20_000)

    alice.keyboard.press("h")
    expect(alice.locator('.toolbar [data-action="hand"]')).to_have_attribute("aria-pressed", "true")
    bruno.wait_for_selector(f'{tile("Alice Martin")}[data-hand="true"]', timeout=10_000)
    open_panel(bruno, "people")
    bruno.wait_for_selector(f'{person_row("Alice Martin")}[data-hand="true"]', timeout=10_000)
    said = bruno.locator('[data-role="announcer"]', has_text="Alice Martin raised")
    expect(said).to_have_count(1)
    # A guest may not lower another person's hand: no such button for them.
    lower = f'{person_row("Alice Martin")} [data-action="lower-hand"]'
    expect(bruno.locator(f"{lower}:visible")).to_have_count(0)

    open_panel(host, "people")
    host.click(lower)
    expect(alice.locator('.toolbar [data-action="hand"]')).to_have_attribute(
        "aria-pressed", "false", timeout=10_000
    )
    bruno.wait_for_selector(f'{tile("Alice Martin")}[data-hand="false"]', timeout=10_000)


def test_keyboard_shortcuts_and_escape_but_not_while_typing(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "keys.ics")
    alice = join(browsers, link, "Alice Martin")
    bruno = join(browsers, link, "Bruno Petit")
    seen = tile("Alice Martin")
    wait_playing(bruno, participant_video("Alice Martin"))

    alice.keyboard.press("m")
    bruno.wait_for_selector(f'{seen}[data-muted="true"]', timeout=10_000)
    alice.keyboard.press("m")
    bruno.wait_for_selector(f'{seen}[data-muted="false"]', timeout=10_000)
    alice.keyboard.press("v")
    bruno.wait_for_selector(f'{seen}[data-camera="off"]', timeout=10_000)
    expect(bruno.locator(f"{seen} .avatar b")).to_have_text("AM")
    alice.keyboard.press("v")
    bruno.wait_for_selector(f'{seen}[data-camera="on"]', timeout=10_000)

    alice.keyboard.press("c")
    expect(alice.locator('[data-role="chat-panel"]')).to_be_visible()
    assert panel(alice) == "chat"
    alice.keyboard.press("Escape")
    expect(alice.locator('[data-role="chat-panel"]')).to_be_hidden()
    assert panel(alice) == "" and focused_action(alice) == "chat"
    alice.keyboard.press("p")
    expect(alice.locator('[data-role="people-panel"]')).to_be_visible()
    assert panel(alice) == "people"

    # Letters typed in the message box are text, not shortcuts.
    open_panel(alice, "chat")
    alice.click("#chat-text")
    alice.keyboard.type("mvhctp")
    expect(alice.locator("#chat-text")).to_have_value("mvhctp")
    alice.keyboard.press("Enter")
    # Once Bruno has the message, he would have had any mute or camera change sent before it.
    expect(bruno.locator('[data-role="chat"] li', has_text="mvhctp")).to_have_count(1)
    assert panel(alice) == "chat"
    assert alice.evaluate("document.body.dataset.view") == "speaker"
    expect(alice.locator('.toolbar [data-action="hand"]')).to_have_attribute(
        "aria-pressed", "false"
    )
    expect(bruno.locator(seen)).to_have_attribute("data-muted", "false")
    expect(bruno.locator(seen)).to_have_attribute("data-camera", "on")


def test_without_a_picture_others_see_the_initials(user: DavUser, browsers: Browsers) -> None:
    link = book(user, "initials.ics")
    bruno = join(browsers, link, "Bruno Petit")
    alice = join(browsers, link, "Alice Martin")
    wait_playing(bruno, participant_video("Alice Martin"))
    alice.click('.toolbar [data-action="camera"]')
    seen = bruno.locator(tile("Alice Martin"))
    expect(seen).to_have_attribute("data-camera", "off", timeout=10_000)
    expect(seen.locator(".avatar b")).to_have_text("AM")
    expect(seen.locator(".avatar b")).to_be_visible()

    # Someone with no camera at all: initials from the start.
    chloe = open_room(without_camera(browsers), link)
    join_as_guest(chloe, "Chloé Durand")
    wait_state(chloe, "joined")
    seen = bruno.locator(tile("Chloé Durand"))
    expect(seen).to_have_attribute("data-camera", "off", timeout=15_000)
    expect(seen.locator(".avatar b")).to_have_text("CD")
    expect(seen.locator(".avatar b")).to_be_visible()
