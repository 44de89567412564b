"""Dial-in with real sipp calls: the right number (and how the room page shows the caller),
wrong numbers, a room not open yet, limits."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Browsers
from tests.browser.pages import TRACK_PCS, join_as_guest, open_panel, wait_state
from tests.e2e.conftest import DavUser
from tests.phone import pcap, sipp
from tests.phone.conftest import TRUNK, PhoneStack, book
from tests.support.stack import wait_for

CALLER = "0612341234"
SHOWN = "Téléphone …12 34"  # the gateway's name for it (phone/bridge.py masked_name, in French)

RECEIVED_ENERGY = """async () => {
  let energy = 0;
  for (const pc of window.__pcs) {
    const stats = await pc.getStats();
    stats.forEach((s) => {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') energy += s.totalAudioEnergy || 0;
    });
  }
  return energy;
}"""


def dial(number: str) -> str:
    return number + "#"


def initials(name: str) -> str:
    """The avatar's letters as the page computes them: first letter of the first and of the
    last word, once everything but letters, digits, ' and - is a space; upper-cased."""
    words = "".join(c if c.isalnum() or c in "'-" else " " for c in name).split()
    if not words:
        return "?"
    return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()


def tile_of(name: str) -> str:
    return f'[data-role="tiles"] figure.tile[data-person="{name}"]'


def row_of(name: str) -> str:
    return f'[data-role="people"] li[data-person="{name}"]'


# The ring a user sees around a speaker: the tile's ::after border, transparent otherwise.
RING_SHOWN = """(selector) => {
  const tile = document.querySelector(selector);
  if (!tile || tile.dataset.speaking !== 'true') return false;
  const color = getComputedStyle(tile, '::after').borderTopColor;
  return color !== 'rgba(0, 0, 0, 0)' && color !== 'transparent';
}"""


def sees_a_caller(page: Page, name: str) -> None:
    """A caller's tile: their initials and a phone, no picture; "par téléphone" in the panel."""
    tile = page.locator(tile_of(name))
    expect(tile).to_be_visible(timeout=20000)
    expect(tile.locator(".avatar b")).to_have_text(initials(name))
    expect(tile.locator(".avatar svg.phone")).to_have_count(1)
    expect(tile.locator(".avatar")).to_be_visible()
    assert tile.locator("video").count() == 0
    open_panel(page, "people")
    row = page.locator(row_of(name))
    expect(row).to_be_visible(timeout=10000)
    expect(row).to_contain_text("(par téléphone)")


def sees_the_ring(page: Page, name: str) -> None:
    page.wait_for_function(RING_SHOWN, arg=tile_of(name), timeout=20000, polling=100)


def test_right_number_joins_the_room_with_audio_both_ways(
    phone_stack: PhoneStack, user: DavUser, browsers: Browsers, work: Path
) -> None:
    meeting = book(user, "phone-room.ics")
    page = browsers.launch("speech").new_page()
    page.add_init_script(TRACK_PCS)
    page.goto(f"{meeting.link}?lang=fr")
    join_as_guest(page, "Alice")
    wait_state(page, "joined")

    ear = sipp.RtpReceiver()
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    voice = pcap.speech(work / "voice.pcap", repeat=4)
    steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(4000)
    steps += sipp.play(voice) + sipp.pause(16000)
    steps += sipp.info("*") + sipp.info("6") + sipp.pause(4000)  # *6 by SIP INFO: muted
    call = sipp.call(sipp.scenario(work / "call.xml", steps, media_port=ear.port), phone_stack.sip)
    try:
        person = f'[data-participant="{SHOWN}"]'
        page.wait_for_selector(person, timeout=20000)
        joined = time.monotonic()
        # The caller's voice reaches the browser: energy well above silence, and it speaks.
        before = float(page.evaluate(RECEIVED_ENERGY))
        page.wait_for_selector(f'{person}[data-speaking="true"]', timeout=20000)
        sees_the_ring(page, SHOWN)
        wait_for(
            lambda: float(page.evaluate(RECEIVED_ENERGY)) > before + 0.05,
            timeout=20,
            what="the caller's voice in the browser",
        )
        # The caller hears the browser's voice once the welcome prompt is over (< 6 s).
        wait_for(
            lambda: ear.voiced_since(joined + 6.0) >= 2.0,
            timeout=25,
            what="the browser's voice at the caller",
        )
        assert initials(SHOWN) == "T3"
        sees_a_caller(page, SHOWN)
        page.wait_for_selector(f'{person}[data-muted="true"]', timeout=30000)
        expect(page.locator(tile_of(SHOWN))).to_have_attribute("data-muted", "true")
        expect(page.locator(row_of(SHOWN))).to_have_attribute("data-muted", "true")
        assert call.wait(60) == 0, call.output()
        page.wait_for_selector(person, state="detached", timeout=10000)
    finally:
        call.stop()
        ear.close()


# An address of its own in the allowed 127.0.0.0/29 (.5 gets blocked by the rate-limit test).
VIDEO_CALLER_IP = "127.0.0.4"


def test_a_caller_in_a_video_room_shows_initials_and_a_phone_not_a_video(
    phone_stack: PhoneStack, user: DavUser, browsers: Browsers, work: Path
) -> None:
    meeting = book(user, "phone-visio.ics", categories="Visio")
    page = browsers.launch().new_page()
    page.goto(f"{meeting.link}?lang=fr")
    join_as_guest(page, "Bruno")
    wait_state(page, "joined")

    caller, shown = "0698765487", "Téléphone …54 87"
    ear = sipp.RtpReceiver(host=VIDEO_CALLER_IP)
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    voice = pcap.speech(work / "voice.pcap", repeat=3)
    steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(4000)
    steps += sipp.play(voice) + sipp.pause(12000)
    steps += sipp.info("*") + sipp.info("6") + sipp.pause(4000)  # *6 by SIP INFO: muted
    scenario = sipp.scenario(work / "visio.xml", steps, caller=caller, media_port=ear.port)
    call = sipp.call(scenario, phone_stack.sip, local_ip=VIDEO_CALLER_IP)
    try:
        assert initials(shown) == "T8"
        sees_a_caller(page, shown)
        sees_the_ring(page, shown)
        expect(page.locator(tile_of(shown))).to_have_attribute("data-muted", "true", timeout=30000)
        expect(page.locator(row_of(shown))).to_have_attribute("data-muted", "true")
        assert page.locator(f"{tile_of(shown)} video").count() == 0  # still no picture
        assert call.wait(60) == 0, call.output()
        page.wait_for_selector(tile_of(shown), state="detached", timeout=10000)
    finally:
        call.stop()
        ear.close()


def wrong_number_steps(work: Path, number: str) -> str:
    """Three attempts, each typed while the (re)try prompt plays."""
    attempts = [pcap.keys(work / f"wrong{i}.pcap", number, first=i * 20) for i in range(3)]
    return (
        sipp.pause(800)
        + sipp.play(attempts[0])
        + sipp.pause(3500)
        + sipp.play(attempts[1])
        + sipp.pause(3500)
        + sipp.play(attempts[2])
    )


def test_wrong_numbers_are_retried_twice_then_the_call_ends(
    phone_stack: PhoneStack, work: Path
) -> None:
    ear = sipp.RtpReceiver(host="127.0.0.2")
    scenario = sipp.scenario(
        work / "wrong.xml",
        wrong_number_steps(work, "11223344#"),
        caller="0699000001",
        media_port=ear.port,
        end="wait_bye",
        timeout_ms=20000,
    )
    start = time.monotonic()
    call = sipp.call(scenario, phone_stack.sip, local_ip="127.0.0.2")
    try:
        # sipp fails on a BYE during its pauses: rc 0 means the third attempt was heard.
        assert call.wait(60) == 0, call.output()
        assert ear.voiced_since(start) > 1.5  # prompts were spoken (each cut short by keys)
        wait_for(lambda: "ends: wrong number" in phone_stack.log(), timeout=5, what="log")
    finally:
        call.stop()
        ear.close()


def test_a_room_not_open_yet_says_when_it_opens_then_hangs_up(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    meeting = book(user, "later.ics", starts_in=dt.timedelta(hours=3))
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    ear = sipp.RtpReceiver(host="127.0.0.3")
    steps = sipp.pause(800) + sipp.play(keys)
    scenario = sipp.scenario(
        work / "later.xml", steps, caller="0699000002", media_port=ear.port, end="wait_bye"
    )
    call = sipp.call(scenario, phone_stack.sip, local_ip="127.0.0.3")
    try:
        assert call.wait(60) == 0, call.output()
        wait_for(lambda: "ends: not open yet" in phone_stack.log(), timeout=5, what="log")
        assert ear.voiced_since(0) > 2.0  # the welcome (cut short by the keys), then the date
    finally:
        call.stop()
        ear.close()


def test_two_callers_in_a_phone_only_audio_room_hear_each_other(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    meeting = book(user, "phones.ics", categories="Audioconférence")
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    voice = pcap.speech(work / "voice.pcap", repeat=3)
    ears = [sipp.RtpReceiver(), sipp.RtpReceiver()]
    calls = []
    start = time.monotonic()
    for i, ear in enumerate(ears):
        steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(3500)
        steps += sipp.play(voice) + sipp.pause(18000)
        scenario = sipp.scenario(
            work / f"caller{i}.xml", steps, caller=f"06990000{i}{i}", media_port=ear.port
        )
        calls.append(sipp.call(scenario, phone_stack.sip))
    try:
        # Past both welcome prompts (joined ~3 s in, prompt < 6 s), each hears the other.
        for ear in ears:
            wait_for(
                lambda ear=ear: ear.voiced_since(start + 9.5) >= 3.0,
                timeout=20,
                what="the other caller's voice",
            )
        for call in calls:
            assert call.wait(60) == 0, call.output()
    finally:
        for call in calls:
            call.stop()
        for ear in ears:
            ear.close()


def test_deleting_the_event_ends_the_call_with_a_message(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    meeting = book(user, "gone.ics")
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    ear = sipp.RtpReceiver()
    steps = sipp.pause(500) + sipp.play(keys)
    scenario = sipp.scenario(
        work / "gone.xml", steps, caller="0699000003", media_port=ear.port, end="wait_bye"
    )
    call = sipp.call(scenario, phone_stack.sip)
    try:
        wait_for(lambda: "…03 (127.0.0.1) joined room" in phone_stack.log(), what="the caller in")
        assert user.session.delete(user.url("gone.ics"), timeout=30).status_code in (200, 204)
        wait_for(lambda: "closes: deleted" in phone_stack.log(), timeout=10, what="closing")
        closed = time.monotonic()
        assert call.wait(60) == 0, call.output()  # our BYE came
        wait_for(lambda: "room closed (deleted)" in phone_stack.log(), timeout=5, what="log")
        # Between the closing and the BYE the caller heard the goodbye (~2 s of speech).
        assert ear.voiced_since(closed) > 1.0
    finally:
        call.stop()
        ear.close()


def test_a_peer_outside_the_allow_list_must_authenticate(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    # Without credentials: 401 with a digest challenge, and nothing more.
    bare = sipp.scenario(work / "bare.xml", "", caller="0699000004", end="none")
    text = bare.read_text()
    head, _, _ = text.partition('  <recv response="200" rtd="true"/>')
    bare.write_text(
        head.replace('<recv response="100" optional="true"/>', "")
        + '  <recv response="401"/>\n</scenario>\n'
    )
    call = sipp.call(bare, phone_stack.sip, local_ip="127.0.0.9")
    assert call.wait(30) == 0, call.output()
    # With the trunk's digest credentials the call is answered (over TCP this time).
    meeting = book(user, "trunk.ics")
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    steps = sipp.pause(500) + sipp.play(keys) + sipp.pause(6000)  # ten presses take 3 s
    scenario = sipp.scenario(work / "auth.xml", steps, caller="0699000005", auth=TRUNK)
    call = sipp.call(scenario, phone_stack.sip, local_ip="127.0.0.9", transport="t1")
    try:
        assert call.wait(60) == 0, call.output()
        wait_for(lambda: "…05 (127.0.0.9) joined room" in phone_stack.log(), timeout=5, what="log")
    finally:
        call.stop()


def test_guessing_room_numbers_gets_the_address_blocked(
    phone_stack: PhoneStack, user: DavUser, work: Path
) -> None:
    calls = []
    for i in range(2):  # 2 x 3 wrong numbers from one address: blocked at the sixth
        scenario = sipp.scenario(
            work / f"guess{i}.xml",
            wrong_number_steps(work, "99887766#"),
            caller=f"07000000{i}{i}",
            end="wait_bye",
            timeout_ms=20000,
        )
        calls.append(sipp.call(scenario, phone_stack.sip, local_ip="127.0.0.5"))
    for call in calls:
        assert call.wait(60) == 0, call.output()
    assert "blocked for" in phone_stack.log()
    # Now even the right number from that address is refused, before any digit counts.
    meeting = book(user, "guarded.ics")
    keys = pcap.keys(work / "keys.pcap", dial(meeting.number))
    steps = sipp.pause(800) + sipp.play(keys)
    scenario = sipp.scenario(work / "late.xml", steps, caller="0700000099", end="wait_bye")
    call = sipp.call(scenario, phone_stack.sip, local_ip="127.0.0.5")
    try:
        assert call.wait(60) == 0, call.output()
        assert "…99 (127.0.0.5) joined" not in phone_stack.log()
        assert phone_stack.log().count("ends: blocked") >= 2
    finally:
        call.stop()
