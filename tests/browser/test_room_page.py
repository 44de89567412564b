"""The room page as people see it: layout at four window sizes, tile view, alone, English.

Screenshots of each size and state land in tests/artifacts/room/ (not committed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    focused_action,
    join_as_guest,
    open_panel,
    open_room,
    panel,
    participant_video,
    settle,
    tile,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import DavUser

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "room"
SIZES = [(1280, 800), (1920, 1080), (390, 844), (844, 390)]
TOOLBAR = ["mute", "camera", "share", "hand", "chat", "people", "tiles", "settings", "leave"]
MAIN = 'video[data-role="main"]'
VIEW = "v => document.body.dataset.view === v"

# What the window shows now: scroll sizes, the main video's box, the toolbar buttons' boxes.
MEASURE = """(actions) => {
  const de = document.documentElement;
  const box = (n) => { if (!n) return null; const r = n.getBoundingClientRect();
    const s = getComputedStyle(n);
    return {x: r.left, y: r.top, w: r.width, h: r.height,
            shown: r.width > 0 && r.height > 0 && s.visibility !== 'hidden'}; };
  return {vw: innerWidth, vh: innerHeight, sw: de.scrollWidth, sh: de.scrollHeight,
          main: box(document.querySelector('video[data-role="main"]')),
          buttons: Object.fromEntries(actions.map(a =>
            [a, box(document.querySelector(`.toolbar [data-action="${a}"]`))]))};
}"""


def problems_now(page: Page, speaker: bool) -> list[str]:
    m: dict[str, Any] = page.evaluate(MEASURE, TOOLBAR)
    vw, vh = m["vw"], m["vh"]
    out = []
    if m["sh"] > vh or m["sw"] > vw:
        out.append(f"page scrolls: content {m['sw']}x{m['sh']} in a {vw}x{vh} window")
    if speaker:
        v = m["main"]
        seen_w = max(0, min(v["x"] + v["w"], vw) - max(v["x"], 0))
        seen_h = max(0, min(v["y"] + v["h"], vh) - max(v["y"], 0))
        if seen_w * seen_h < vw * vh / 2:
            out.append(f"main video covers {seen_w:.0f}x{seen_h:.0f} of {vw}x{vh} (< half)")
    for name, b in m["buttons"].items():
        if b is None or not b["shown"]:
            out.append(f"toolbar button {name} not shown")
        elif b["x"] < 0 or b["y"] < 0 or b["x"] + b["w"] > vw or b["y"] + b["h"] > vh:
            out.append(f"toolbar button {name} at {b} outside the {vw}x{vh} window")
    return out


def check_layout(page: Page, speaker: bool, what: str) -> None:
    """Waits a little for the layout to settle after a resize; then says all that is wrong."""
    settle(lambda: not problems_now(page, speaker))
    assert problems_now(page, speaker) == [], what


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"))


def tab_walk(page: Page) -> list[str]:
    page.locator('.toolbar [data-action="mute"]').focus()
    walked = [focused_action(page)]
    for _ in TOOLBAR[1:]:
        page.keyboard.press("Tab")
        walked.append(focused_action(page))
    return walked


def three_in_a_room(browsers: Browsers, link: str, first: Page | None = None) -> list[Page]:
    """Alice Martin watches; Bruno Petit talks (the active speaker); Chloé Durand listens."""
    people = [("Alice Martin", "silence"), ("Bruno Petit", "speech"), ("Chloé Durand", "silence")]
    pages = []
    for i, (name, voice) in enumerate(people):
        page = first if i == 0 and first else open_room(browsers.launch(voice), link)
        join_as_guest(page, name)
        wait_state(page, "joined")
        pages.append(page)
    for name in ("Bruno Petit", "Chloé Durand"):
        wait_playing(pages[0], participant_video(name), timeout=30)
    return pages


def test_layout_at_four_window_sizes(user: DavUser, browsers: Browsers) -> None:
    link = book(user, "layout.ics")
    browser = browsers.launch()
    for w, h in SIZES:
        # Opened at that size, as on that device (the page focuses the name field).
        prejoin = browser.new_page(viewport={"width": w, "height": h})
        prejoin.goto(f"{link}?lang=fr")
        wait_state(prejoin, "prejoin")
        wait_playing(prejoin, 'video[data-role="preview"]')
        join = prejoin.locator('[data-action="join"]')
        expect(join).to_be_visible()
        box = join.bounding_box()
        assert box, f"no join button at {w}x{h}"
        inside = box["x"] >= 0 and box["y"] >= 0
        inside = inside and box["x"] + box["width"] <= w and box["y"] + box["height"] <= h
        assert inside, f"join button at {box}, outside the {w}x{h} window"
        shot(prejoin, f"prejoin-{w}x{h}")
        prejoin.close()
    alice = open_room(browser, link)
    alice.set_viewport_size({"width": 1280, "height": 800})
    three_in_a_room(browsers, link, first=alice)
    # Bruno (the first one in, and the one who talks) fills the main window.
    alice.wait_for_selector(f'{MAIN}[data-speaker="Bruno Petit"]', timeout=30_000)

    for w, h in SIZES:
        size = f"{w}x{h}"
        alice.set_viewport_size({"width": w, "height": h})
        check_layout(alice, True, f"speaker view {size}")
        assert tab_walk(alice) == TOOLBAR, f"Tab order at {size}"
        wait_playing(alice, MAIN)
        shot(alice, f"speaker-{size}")

        alice.click('.toolbar [data-action="tiles"]')
        alice.wait_for_function(VIEW, arg="tiles")
        check_layout(alice, False, f"tile view {size}")
        wait_playing(alice, participant_video("Bruno Petit"))
        shot(alice, f"tiles-{size}")
        alice.click('.toolbar [data-action="tiles"]')
        alice.wait_for_function(VIEW, arg="speaker")

        open_panel(alice, "people")
        expect(alice.locator('[data-role="people-panel"]')).to_be_visible()
        check_layout(alice, False, f"participants panel {size}")
        shot(alice, f"people-panel-{size}")
        alice.keyboard.press("Escape")
        alice.wait_for_function("() => !document.body.dataset.panel")


def test_tile_view_shows_everyone_alike_and_t_goes_back(user: DavUser, browsers: Browsers) -> None:
    alice, _, _ = three_in_a_room(browsers, book(user, "tiles.ics"))
    alice.set_viewport_size({"width": 1280, "height": 800})
    alice.keyboard.press("t")
    alice.wait_for_function(VIEW, arg="tiles")
    tiles_button = alice.locator('.toolbar [data-action="tiles"]')
    expect(tiles_button).to_have_attribute("aria-pressed", "true")
    expect(alice.locator('[data-role="main-tile"]')).to_be_hidden()
    for name in ("Bruno Petit", "Chloé Durand"):
        expect(alice.locator(tile(name))).to_be_visible()
        wait_playing(alice, participant_video(name))

    def sizes() -> list[tuple[float, float]]:
        boxes = [alice.locator(tile(n)).bounding_box() for n in ("Bruno Petit", "Chloé Durand")]
        return [(b["width"], b["height"]) for b in boxes if b]

    def alike() -> bool:
        (w1, h1), (w2, h2) = sizes()
        return abs(w1 - w2) <= 0.1 * max(w1, w2) and abs(h1 - h2) <= 0.1 * max(h1, h2)

    settle(alike)
    assert alike(), f"tile sizes differ: {sizes()}"

    alice.keyboard.press("t")
    alice.wait_for_function(VIEW, arg="speaker")
    expect(tiles_button).to_have_attribute("aria-pressed", "false")
    expect(alice.locator('[data-role="main-tile"]')).to_be_visible()
    wait_playing(alice, MAIN)


def test_the_first_one_in_is_told_they_are_alone_until_someone_comes(
    user: DavUser, browsers: Browsers
) -> None:
    link = book(user, "alone.ics")
    first = open_room(browsers.launch(), link)
    join_as_guest(first, "Alice Martin")
    wait_state(first, "joined")
    alone = first.locator('[data-role="alone"]')
    expect(alone).to_be_visible()
    second = open_room(browsers.launch(), link)
    join_as_guest(second, "Bruno Petit")
    wait_state(second, "joined")
    expect(alone).to_be_hidden(timeout=15_000)
    expect(second.locator('[data-role="alone"]')).to_be_hidden()


def test_the_toolbar_speaks_english_with_lang_en(user: DavUser, browsers: Browsers) -> None:
    page = open_room(browsers.launch(lang="en"), book(user, "english.ics"), lang="en")
    join_as_guest(page, "Grace Hopper")
    wait_state(page, "joined")
    toolbar = page.get_by_role("toolbar")
    names = [
        ("mute", "Mute"),
        ("camera", "Stop camera"),
        ("share", "Share screen"),
        ("hand", "Raise hand"),
        ("chat", "Chat"),
        ("people", "Participants"),
        ("tiles", "Tile view"),
        ("settings", "Settings"),
        ("leave", "Leave"),
    ]
    for action, name in names:
        button = toolbar.get_by_role("button", name=name, exact=True)
        expect(button).to_be_visible()
        assert button.get_attribute("data-action") == action
    assert panel(page) == ""


def test_self_view_corners_hiding_and_the_settings_panel(user: DavUser, browsers: Browsers) -> None:
    page = open_room(browsers.launch("speech"), book(user, "self.ics"))
    join_as_guest(page, "Alice Martin")
    wait_state(page, "joined")
    me = page.locator('[data-role="self-tile"]')
    expect(me).to_be_visible()
    wait_playing(page, 'video[data-role="self"]')
    corner = str(me.get_attribute("data-corner"))
    corners = ["bl", "tl", "tr", "br"]
    for step in range(1, 5):
        page.click('[data-action="self-move"]')
        expect(me).to_have_attribute("data-corner", corners[(corners.index(corner) + step) % 4])
    page.click('[data-action="self-hide"]')
    expect(me).to_be_hidden()
    page.click('[data-action="self-show"]')
    expect(me).to_be_visible()

    open_panel(page, "settings")
    expect(page.locator('[data-role="settings-panel"]')).to_be_visible()
    assert panel(page) == "settings"
    for role in ("mic-select", "cam-select", "speaker-select"):
        expect(page.locator(f'[data-role="settings-panel"] [data-role="{role}"]')).to_be_visible()
    # The voice on the fake microphone moves the level meter.
    page.wait_for_function(
        "() => document.querySelector('[data-role=\"mic-level\"]').value > 0.05", timeout=15_000
    )
