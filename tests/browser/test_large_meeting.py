"""Large meetings in real Chromium (issue 14): each page receives only what it shows.

Six people, each in a Chromium of their own, in a room whose filmstrip shows two
thumbnails: a receiver's getStats() says what arrives. The main window in the high
layer, thumbnails in the low one, nothing for the cameras off screen; a hidden
person who starts speaking, or is pinned, comes to the main window; only the
speaker's audio packets arrive.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, Playwright

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    TRACK_PCS,
    join_as_guest,
    main_speaker,
    open_panel,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import new_user
from tests.support.stack import Stack

SILENT = ["Albert", "Bérénice", "Camille", "Denis"]
SPEAKER = "Solène"  # the one voice ("speech"): joins muted, speaks when a test unmutes her
RECEIVER = "Régine"  # whose page the stats are read on; joins last
MAIN = 'video[data-role="main"]'
SLOW = 60.0  # six Chromiums on two shared cores: seconds, generous


# Each inbound stream, with what shows it: the main window (whose name) and the
# thumbnails (whose names), found by the video elements' track ids.
INBOUND = """async () => {
  const shown = {};
  for (const v of document.querySelectorAll('video')) {
    const stream = v.srcObject;
    const track = stream && stream.getVideoTracks ? stream.getVideoTracks()[0] : null;
    if (!track) continue;
    const s = shown[track.id] || (shown[track.id] = { main: null, tiles: [] });
    if (v.dataset.role === 'main') s.main = v.dataset.speaker || null;
    else if (v.dataset.participant) s.tiles.push(v.dataset.participant);
  }
  const out = [];
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => {
      if (s.type !== 'inbound-rtp') return;
      const by = shown[s.trackIdentifier] || { main: null, tiles: [] };
      out.push({
        kind: s.kind, mid: s.mid, track: s.trackIdentifier,
        width: s.frameWidth || 0, frames: s.framesDecoded || 0,
        keyframes: s.keyFramesDecoded || 0, packets: s.packetsReceived || 0,
        main: by.main, tiles: by.tiles,
      });
    });
    // Chromium lists a stream once its first packet came: a voice never heard has none.
    for (const t of pc.getTransceivers()) {
      const heard = (d) => d === 'recvonly' || d === 'sendrecv';
      if (t.receiver.track.kind !== 'audio' || !heard(t.currentDirection)) continue;
      if (out.some((s) => s.kind === 'audio' && s.mid === t.mid)) continue;
      out.push({ kind: 'audio', mid: t.mid, track: t.receiver.track.id, packets: 0 });
    }
  }
  return out;
}"""

TILES = "fs => fs.map((f) => f.dataset.person)"

Stat = dict[str, Any]


@dataclass
class Meeting:
    pages: dict[str, Page]

    @property
    def receiver(self) -> Page:
        return self.pages[RECEIVER]


def inbound(page: Page) -> list[Stat]:
    return list(page.evaluate(INBOUND))


def videos(stats: list[Stat]) -> list[Stat]:
    return [s for s in stats if s["kind"] == "video"]


def audios(stats: list[Stat]) -> dict[str, int]:
    return {s["mid"]: s["packets"] for s in stats if s["kind"] == "audio"}


def shown(s: Stat) -> bool:
    return bool(s["main"] or s["tiles"])


def thumbnails(page: Page) -> list[str]:
    return list(page.eval_on_selector_all('[data-role="tiles"] figure.tile', TILES))


def hidden(page: Page) -> list[str]:
    """The others the page shows neither in the main window nor on the filmstrip's page."""
    seen = {main_speaker(page), *thumbnails(page)}
    return [n for n in [*SILENT, SPEAKER] if n not in seen]


def until(sample: Callable[[], Any], ok: Callable[[Any], bool], timeout: float) -> Any:
    """Samples until `ok` holds or the deadline; returns the last sample either way, for the
    caller's assert to say what was seen."""
    deadline = time.monotonic() + timeout
    while True:
        last = sample()
        if ok(last) or time.monotonic() > deadline:
            return last
        time.sleep(0.1)


def frames_later(page: Page, before: list[Stat], frames: int) -> list[Stat]:
    """Stats again once every stream the page shows has decoded `frames` more: a window
    measured by the page's own pictures, whatever the machine's load."""
    then = {s["track"]: s["frames"] for s in videos(before) if shown(s)}

    def ok(now: list[Stat]) -> bool:
        # Streams still shown, that is (a window re-pointed meanwhile stops counting).
        return bool(then) and all(
            s["frames"] >= then[s["track"]] + frames
            for s in videos(now)
            if s["track"] in then and shown(s)
        )

    return list(until(lambda: inbound(page), ok, SLOW))


def set_mic(page: Page, on: bool) -> None:
    button = page.locator('.toolbar [data-action="mute"]')
    if (button.get_attribute("data-on") == "true") != on:
        button.click()
    page.wait_for_selector(f'.toolbar [data-action="mute"][data-on="{str(on).lower()}"]')


def enter(browsers: Browsers, link: str, name: str, voice: str = "silence") -> Page:
    page = browsers.launch(voice).new_page()
    page.add_init_script(TRACK_PCS)
    page.goto(f"{link}?lang=fr")
    if voice == "speech":
        # Muted from the pre-join screen on: no word reaches the room before a test wants it.
        mic = '[data-action="prejoin-mic"][aria-disabled="false"] >> visible=true'
        page.click(mic, timeout=SLOW * 1000)
        page.wait_for_selector('[data-action="prejoin-mic"][data-on="false"] >> visible=true')
    join_as_guest(page, name)
    wait_state(page, "joined", timeout=2 * SLOW)
    return page


@pytest.fixture(scope="module")
def meeting(
    namespace: None,
    playwright: Playwright,
    sounds: dict[str, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Meeting]:
    # Six Chromiums on two cores: each page's REMB estimate falls with the machine's
    # CPU (its packets are read late), not with any network; trusted, it flips pages
    # to low layers and back (seen: 0.45x of the view's need). Views alone decide here;
    # how estimates degrade and probe is tested in tests/room (selection, bandwidth).
    env = {"VISIO_VISIBLE_THUMBNAILS": "2", "VISIO_TRUST_BWE": "no"}
    stack = Stack(tmp_path_factory.mktemp("large"), extra_env=env).start()
    browsers = Browsers(playwright, sounds, tmp_path_factory.mktemp("large-browsers"))
    try:
        link = book(new_user(stack), "large.ics")
        pages = {name: enter(browsers, link, name) for name in SILENT}
        pages[SPEAKER] = enter(browsers, link, SPEAKER, "speech")
        set_mic(pages[SPEAKER], False)
        # The receiver last: the server first routes it everyone, until its view comes.
        pages[RECEIVER] = enter(browsers, link, RECEIVER)
        wait_playing(pages[RECEIVER], MAIN, timeout=2 * SLOW)
        yield Meeting(pages)
    finally:
        browsers.close()
        stack.stop()


def layers(page: Page, stats: list[Stat]) -> tuple[list[Stat], dict[str, Stat]]:
    """The main window's stream, and the stream of each thumbnail on the filmstrip's page."""
    by_tile = {n: s for s in videos(stats) for n in s["tiles"]}
    return [s for s in videos(stats) if s["main"]], {
        n: by_tile.get(n, {}) for n in thumbnails(page)
    }


def sizes(page: Page, stats: list[Stat]) -> str:
    main, tiles = layers(page, stats)
    return (
        f"main window {[(s['main'], s['width']) for s in main]}, "
        f"thumbnails {[(n, s.get('width')) for n, s in tiles.items()]}"
    )


def test_main_window_in_the_high_layer_thumbnails_in_the_low_one(meeting: Meeting) -> None:
    page = meeting.receiver

    def settled(stats: list[Stat]) -> bool:
        main, tiles = layers(page, stats)
        return (
            len(main) == 1
            and main[0]["width"] >= 640
            and len(tiles) == 2
            and all(0 < s.get("width", 0) <= 320 for s in tiles.values())
        )

    first = until(lambda: inbound(page), settled, SLOW)
    print(f"\nsettled: {sizes(page, first)}")
    assert len(thumbnails(page)) == 2, f"VISIO_VISIBLE_THUMBNAILS=2: {thumbnails(page)}"
    assert settled(first), sizes(page, first)
    # And it holds: 150 more pictures in each window (5 s and more) is longer than a
    # bandwidth probe (sfu/bandwidth.py), which would show the high layer only meanwhile.
    later = frames_later(page, first, 150)
    print(f"later: {sizes(page, later)}")
    assert settled(later), sizes(page, later)


def view(page: Page, which: str) -> None:
    if page.evaluate("document.body.dataset.view") != which:
        page.click('.toolbar [data-action="tiles"]')
    page.wait_for_function("v => document.body.dataset.view === v", arg=which)


def test_the_cameras_not_shown_stop_arriving_and_so_does_silence(meeting: Meeting) -> None:
    page = meeting.receiver
    # The tile view first: everyone's camera arrives, each in a stream of its own...
    view(page, "tiles")
    for name in [*SILENT, SPEAKER]:
        wait_playing(page, f'[data-role="tiles"] video[data-participant="{name}"]', timeout=SLOW)
    # ... then back to the main window and two thumbnails: two of those streams are left
    # with no window (the server re-points the others to what is shown).
    view(page, "speaker")
    before = frames_later(page, inbound(page), 30)  # what was in flight has landed
    off_screen = hidden(page)
    assert len(off_screen) >= 2, f"everyone on screen: {main_speaker(page)}, {thumbnails(page)}"
    after = frames_later(page, before, 60)
    none: Stat = {"frames": 0, "main": None, "tiles": []}  # a stream new since `before`
    was = defaultdict(lambda: none, {s["track"]: s for s in videos(before)})
    # Streams no window showed at either sample: re-pointed to nobody, they must be still.
    unshown = [s for s in videos(after) if not shown(s) and not shown(was[s["track"]])]
    growing = [s for s in videos(after) if s["frames"] > was[s["track"]]["frames"]]
    print(
        f"\nhidden: {off_screen}; {len(videos(after))} video streams, growing "
        f"{[(s['mid'], s['main'], s['tiles']) for s in growing]}, not shown "
        f"{[(s['mid'], was[s['track']]['frames'], s['frames']) for s in unshown]}"
    )
    assert len(unshown) >= 2, f"five cameras came in the tile view: {videos(after)}"
    for s in unshown:
        assert s["frames"] == was[s["track"]]["frames"], f"a camera not shown still arrives: {s}"
    # Five cameras in the room, three windows (main and two thumbnails): at most three grow,
    # none of them one of the hidden people's.
    assert len(growing) <= 3, growing
    assert not any(n in s["tiles"] or n == s["main"] for s in growing for n in off_screen)
    # Nobody speaks (the one voice is muted): no audio packet arrives at all.
    assert audios(after) == audios(before), (audios(before), audios(after))


def switch_time(page: Page, name: str, act: Callable[[], None]) -> None:
    """Does `act`, then waits for `name` in the main window with a decoded picture; prints
    how long each step took (the issue's target is 1.5 s: reported, not asserted)."""
    keyframes = {s["track"]: s["keyframes"] for s in videos(inbound(page))}
    start = time.monotonic()
    act()
    page.wait_for_selector(f'{MAIN}[data-speaker="{name}"]', timeout=SLOW * 1000)
    named = time.monotonic() - start

    def picture(stats: list[Stat]) -> bool:
        # The main window's stream starts anew at a keyframe of theirs (keyframe gating).
        return page.evaluate(f"document.querySelector('{MAIN}').videoWidth") > 0 and any(
            s["main"] == name and s["keyframes"] > keyframes.get(s["track"], 0)
            for s in videos(stats)
        )

    stats = until(lambda: inbound(page), picture, SLOW)
    decoded = time.monotonic() - start
    assert picture(stats), f"no new picture of {name} in the main window: {videos(stats)}"
    wait_playing(page, MAIN, timeout=SLOW)
    playing = time.monotonic() - start
    width = [s["width"] for s in videos(stats) if s["main"] == name]
    print(
        f"\n{name} in the main window: named {named:.2f} s, first decoded picture "
        f"{decoded:.2f} s ({width} px), playing (0.5 s of currentTime) {playing:.2f} s"
    )
    assert main_speaker(page) == name


def test_a_hidden_participant_who_speaks_comes_to_the_main_window(meeting: Meeting) -> None:
    page = meeting.receiver
    assert SPEAKER in hidden(page), (main_speaker(page), thumbnails(page))
    switch_time(page, SPEAKER, lambda: set_mic(meeting.pages[SPEAKER], True))


def test_only_the_speakers_audio_arrives(meeting: Meeting) -> None:
    set_mic(meeting.pages[SPEAKER], True)
    page = meeting.receiver
    before = {id(p): audios(inbound(p)) for p in meeting.pages.values()}
    assert len(before[id(page)]) == 5, f"one audio stream per other person: {before[id(page)]}"
    # A window of at least a second of her voice at the receiver (50 packets a second).
    until(
        lambda: audios(inbound(page)),
        lambda now: any(now[m] >= before[id(page)].get(m, 0) + 50 for m in now),
        SLOW,
    )
    frames_later(page, inbound(page), 30)
    for name, p in meeting.pages.items():
        now = audios(inbound(p))
        rising = [m for m in now if now[m] > before[id(p)].get(m, 0)]
        print(f"\n{name}: audio packets {before[id(p)]} -> {now}")
        # Five in the room say nothing: only one stream (hers) grows; she hears no one.
        assert len(rising) == (0 if name == SPEAKER else 1), f"{name}: {rising} grow"


def test_pinning_a_hidden_participant_puts_them_in_the_main_window(meeting: Meeting) -> None:
    page = meeting.receiver
    target = next(n for n in hidden(page) if n != SPEAKER)
    open_panel(page, "people")
    pin = f'[data-role="people"] li[data-person="{target}"] [data-action="pin"]'
    page.wait_for_selector(pin, timeout=SLOW * 1000)
    switch_time(page, target, lambda: page.click(pin))
