"""Cameras and microphones as people really have them: refused, missing, or several.

Each case is Chromium's own behaviour, not a script replacing getUserMedia:
without --use-fake-ui-for-media-stream a headless Chromium refuses what the
page was not granted; `device-count` sets how many fake cameras exist.
"""

from __future__ import annotations

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import CHROMIUM, FLAGS, Browsers, book
from tests.browser.pages import (
    join_as_guest,
    open_panel,
    open_room,
    participant_video,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import DavUser

ASK = "--use-fake-ui-for-media-stream"  # grants every request: left out to refuse
FAKE = "--use-fake-device-for-media-stream"


def launch(browsers: Browsers, *, grant: bool = True, cameras: int = 1) -> Browser:
    flags = [f for f in FLAGS if grant or f != ASK]
    flags = [f"{FAKE}=device-count={cameras}" if f == FAKE else f for f in flags]
    flags.append(f"--use-file-for-fake-audio-capture={browsers.sounds['speech']}")
    browser = browsers.pw.chromium.launch(executable_path=CHROMIUM, args=flags)
    browsers.open.append(browser)
    return browser


def expect_notice(page: Page, key: str, text: str) -> None:
    """The page says what is missing (it may say so a moment after entering)."""
    shown = page.locator('[data-role="notice"]')
    expect(shown).to_have_attribute("data-notice", key)
    expect(shown).to_contain_text(text)


def test_refused_camera_and_microphone_still_watch_and_listen(
    browsers: Browsers, user: DavUser
) -> None:
    link = book(user, "refused.ics")
    host = open_room(browsers.launch(), link)
    join_as_guest(host, "Hôte")
    wait_state(host, "joined")
    page = open_room(launch(browsers, grant=False), link)
    join_as_guest(page, "Sans caméra")
    wait_state(page, "joined")
    expect_notice(page, "denied", "Vous n'avez pas autorisé la caméra et le micro")
    # Both are in the meeting and see each other listed. (Media are not checked here:
    # a page granted nothing gets no host candidate from Chromium in this loopback-only
    # namespace, which has no default route; on a real network it has an mDNS one.)
    expect(host.get_by_text("Sans caméra").first).to_be_visible()
    expect(page.get_by_text("Hôte").first).to_be_visible()


def test_camera_refused_but_microphone_allowed_joins_with_the_microphone(
    browsers: Browsers, user: DavUser
) -> None:
    link = book(user, "mic-only.ics")
    host = open_room(browsers.launch(), link)
    join_as_guest(host, "Hôte")
    wait_state(host, "joined")
    browser = launch(browsers, grant=False)
    context = browser.new_context(permissions=["microphone"])
    page = context.new_page()
    page.goto(f"{link}?lang=en")
    join_as_guest(page, "Micro seul")
    wait_state(page, "joined")
    expect_notice(page, "camera_denied", "microphone only")
    # The microphone is published: the host hears it (an audio slot names this person).
    host.wait_for_function(
        """() => [...document.querySelectorAll('audio')].some(a => a.srcObject
             && a.srcObject.getAudioTracks().length > 0)""",
        timeout=20_000,
    )


def test_no_camera_at_all_joins_with_the_microphone(browsers: Browsers, user: DavUser) -> None:
    link = book(user, "no-camera.ics")
    page = open_room(launch(browsers, cameras=0), link)
    join_as_guest(page, "Pas de caméra")
    wait_state(page, "joined")
    expect_notice(page, "no_camera", "Pas de caméra disponible")


def test_choosing_another_camera_is_what_the_others_then_see(
    browsers: Browsers, user: DavUser
) -> None:
    link = book(user, "two-cameras.ics")
    page = open_room(launch(browsers, cameras=2), link)
    join_as_guest(page, "Deux caméras")
    wait_state(page, "joined")
    viewer = open_room(browsers.launch(), link)
    join_as_guest(viewer, "Spectateur")
    wait_state(viewer, "joined")
    wait_playing(viewer, participant_video("Deux caméras"))
    label = "() => document.querySelector('video[data-role=\"self\"]').srcObject"
    label += ".getVideoTracks()[0].label"
    assert page.evaluate(label) == "fake_device_0"
    cameras = page.locator('[data-role="cam-select"] option')
    expect(cameras).to_have_count(2)
    open_panel(page, "settings")  # inside the room, the device lists are in Paramètres
    page.select_option('[data-role="cam-select"]', label="fake_device_1")
    page.wait_for_function(f"{label} === 'fake_device_1'", timeout=10_000)
    # The new camera reaches the others without anyone rejoining.
    wait_playing(viewer, participant_video("Deux caméras"))
