"""What a test does and reads on the room page, through the page's contract only."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.support.stack import wait_for

STATE = "s => document.body.dataset.roomState === s"


def open_room(browser: Browser, link: str, lang: str = "fr") -> Page:
    page = browser.new_page()
    page.goto(f"{link}?lang={lang}")
    return page


def join_as_guest(page: Page, name: str) -> None:
    """The pre-join screen (or the waiting page): a name, then "Rejoindre"."""
    page.fill("#guest-name", name)
    page.click('[data-action="join"]')


def enter_personal(page: Page) -> None:
    """A personal link: the pre-join screen names the person; "Rejoindre" lets them in."""
    wait_state(page, "prejoin")
    page.click('[data-action="join"]')


def open_panel(page: Page, name: str) -> None:
    """Open a side panel (chat, people, settings) if it is not open yet."""
    button = page.locator(f'.toolbar [data-action="{name}"]')
    if button.get_attribute("aria-expanded") != "true":
        button.click()


def wait_state(page: Page, state: str, timeout: float = 20.0) -> None:
    page.wait_for_function(STATE, arg=state, timeout=timeout * 1000)


def state(page: Page) -> str:
    return str(page.evaluate("document.body.dataset.roomState"))


PLAYING = """([selector, since]) => {
  const v = document.querySelector(selector);
  if (!v || v.videoWidth === 0) return false;
  // A new stream in the element (the server moved it to another slot) starts its
  // currentTime again from 0: count from there.
  if (!v.dataset.t0 || v.currentTime < Number(v.dataset.t0)) {
    v.dataset.t0 = String(v.currentTime);
    return false;
  }
  return v.currentTime > Number(v.dataset.t0) + since;
}"""

# What the page's video elements and connections look like: said when a wait fails.
VIDEOS = """() => ({
  state: document.body.dataset.roomState, view: document.body.dataset.view,
  videos: [...document.querySelectorAll('video')].map((v) => {
    const t = v.srcObject && v.srcObject.getVideoTracks ? v.srcObject.getVideoTracks()[0] : null;
    return {
      role: v.dataset.role || null, who: v.dataset.participant || v.dataset.speaker || null,
      width: v.videoWidth, time: Math.round(v.currentTime * 10) / 10, paused: v.paused,
      track: t ? `${t.id.slice(0, 8)} ${t.readyState}${t.muted ? ' muted' : ''}` : null,
    };
  }),
  pcs: (window.__pcs || []).map((pc) => `${pc.connectionState}/${pc.signalingState}`),
})"""


def wait_playing(page: Page, selector: str, timeout: float = 20.0) -> None:
    """The video has a picture (videoWidth > 0) and its currentTime moves on."""
    page.evaluate(
        "s => { const v = document.querySelector(s); if (v) delete v.dataset.t0; }", selector
    )
    try:
        page.wait_for_function(PLAYING, arg=[selector, 0.5], timeout=timeout * 1000, polling=200)
    except PlaywrightTimeout:
        seen = page.evaluate(VIDEOS)
        raise AssertionError(f"{selector} not playing after {timeout:.0f} s: {seen}") from None


def participant_video(name: str) -> str:
    return f'video[data-participant="{name}"]'


def main_speaker(page: Page) -> str:
    return str(page.get_attribute('video[data-role="main"]', "data-speaker"))


def tile(name: str) -> str:
    """A person's thumbnail (filmstrip) or tile (tile view), on the current page."""
    return f'[data-role="tiles"] figure.tile[data-person="{name}"]'


def person_row(name: str) -> str:
    """A person's line in the Participants panel."""
    return f'[data-role="people"] li[data-person="{name}"]'


def sign_in(page: Page, login: str, password: str) -> None:
    """The pre-join screen's account form (the organizer goes straight in)."""
    page.fill("#signin-login", login)
    page.fill("#signin-password", password)
    page.click('[data-action="sign-in"]')


def panel(page: Page) -> str:
    return str(page.evaluate("document.body.dataset.panel || ''"))


def focused_action(page: Page) -> str:
    return str(page.evaluate("document.activeElement && document.activeElement.dataset.action"))


def settle(condition: Callable[[], object], timeout: float = 10.0) -> None:
    """Gives a layout a moment to settle (after a resize): the caller asserts next, so a
    timeout here is not an error of its own but leaves the assert to say what is wrong."""
    with contextlib.suppress(TimeoutError):
        wait_for(condition, timeout=timeout, what="a settled layout")


# Every RTCPeerConnection of the page in window.__pcs (add_init_script), so a test can
# read what the page receives: the subscribe connection is not exposed otherwise.
TRACK_PCS = """
(() => {
  const Native = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = function (...args) {
    const pc = new Native(...args);
    window.__pcs.push(pc);
    return pc;
  };
  window.RTCPeerConnection.prototype = Native.prototype;
})();
"""
