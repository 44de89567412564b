"""A recorded and live-streamed meeting, start to finish, with real browsers and a real ingest.

Two people (espeak-ng voices in headless Chromium) accept the notice, talk in
turn, share a screen, one leaves, the backend restarts; the organizer gets the
link and downloads the file from the portal. The MP4 segments and what nginx-rtmp
received are read back with PyAV.
"""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

from playwright.sync_api import Page

from tests.browser.conftest import Browsers, book
from tests.browser.pages import join_as_guest, open_room, wait_state
from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.recording.media import holds, probe
from tests.recording.rtmp import RtmpServer
from tests.support.stack import Stack, wait_for

KEY = "k3y-SECRET-1234"


def segments(stack: Stack) -> list[Path]:
    return sorted((stack.data_dir / "recordings").glob("*/*.mp4"))


def stopped(stack: Stack, path: Path) -> bool:
    """The backend says this file's recording stopped: the file is closed, nothing writes it."""
    return any(
        "recording stopped" in line and f"file {path} closed" in line
        for line in stack.log_text().splitlines()
    )


def enter(page: Page, name: str) -> None:
    """Acknowledge the recording notice, then join as a guest."""
    consent = page.locator('[data-role="consent"]')
    consent.wait_for(state="visible")
    # Nothing to fill and nothing joined before the notice is acknowledged.
    assert page.locator('[data-role="prejoin"]').is_hidden()
    assert page.evaluate("document.body.dataset.roomState") == "prejoin"
    page.click('[data-action="accept-recording"]')
    assert consent.is_hidden()
    join_as_guest(page, name)
    wait_state(page, "joined")
    assert page.locator('[data-role="recording-indicator"]').is_visible()


def speaker_is(page: Page, name: str, timeout: float = 20.0) -> None:
    page.wait_for_function(
        "n => document.querySelector('video[data-role=main]').dataset.speaker === n",
        arg=name,
        timeout=timeout * 1000,
    )


def notices(stack: Stack) -> list[email.message.EmailMessage]:
    found = []
    for path in sorted((stack.data_dir / "mail").glob("notice-*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        found.append(msg)
    return found


def test_recorded_and_streamed_meeting(
    stack: Stack, user: DavUser, browsers: Browsers, rtmp: RtmpServer
) -> None:
    earlier = set(segments(stack))  # other tests' recordings, in the same stack
    link = book(
        user,
        "recorded.ics",
        extra=(
            f"ORGANIZER:mailto:{user.login}@example.org\n"
            "ATTENDEE;CN=Paul Partner;RSVP=TRUE:mailto:paul@partner.example\n"
            "X-VISIO-LOBBY:FALSE\nX-VISIO-RECORD:TRUE\n"
            f"X-VISIO-STREAM-URL:{rtmp.url(KEY)}"
        ),
    )
    # The attendee's invitation warns, and carries no stream key.
    invitation = wait_for(
        lambda: list((stack.data_dir / "mail").glob("*-request-paul@partner.example.eml")),
        what="the invitation",
    )[0]
    msg = email.message_from_bytes(invitation.read_bytes(), policy=email.policy.default)
    assert isinstance(msg, email.message.EmailMessage)
    body = msg.get_body(("plain",))
    assert body is not None
    assert "Cette réunion sera enregistrée et diffusée en direct" in body.get_content()
    assert KEY not in invitation.read_text()

    alice = open_room(browsers.launch("speech"), link)
    assert "enregistre" in alice.locator('[data-role="consent"]').inner_text()
    enter(alice, "Alice")
    bob = open_room(browsers.launch("speech"), link, lang="en")
    assert "records this meeting" in bob.locator('[data-role="consent"]').inner_text()
    enter(bob, "Bob")
    bob.click('[data-action="mute"]')  # Bob listens first

    def mine() -> list[Path]:  # in the order they were started
        return sorted(set(segments(stack)) - earlier, key=lambda p: p.stat().st_mtime_ns)

    # Recording to a file and streaming to the ingest, from the opening.
    wait_for(mine, timeout=20, what="a recording segment")
    wait_for(lambda: rtmp.recorded(), timeout=20, what="the stream at the ingest")
    speaker_is(bob, "Alice")
    wait_for(lambda: "recording shows Alice (camera)" in stack.log_text(), what="Alice shown")

    # Turns: Alice stops, Bob speaks; the recording follows the speaker.
    alice.click('[data-action="mute"]')
    bob.click('[data-action="mute"]')
    speaker_is(alice, "Bob")
    wait_for(lambda: "recording shows Bob (camera)" in stack.log_text(), what="Bob shown")

    # A shared screen takes the picture while it lasts.
    alice.click('[data-action="share"]')
    bob.wait_for_selector('video[data-role="main"][data-source="screen"]', timeout=15000)
    wait_for(lambda: "recording shows Alice (screen)" in stack.log_text(), what="screen shown")
    alice.click('[data-action="share"]')
    bob.wait_for_selector('video[data-role="main"][data-source="camera"]', timeout=15000)

    # Someone leaves: the recording goes on.
    bob.click('[data-action="leave"]')
    wait_state(bob, "closed")
    (first,) = mine()
    size = first.stat().st_size
    wait_for(lambda: first.stat().st_size > size, timeout=10, what="the file still growing")
    # What is asserted after the restart is on disk before it, however fast the steps
    # above went: 3 s of picture and sound with a voice, and 2 s of it at the ingest.
    wait_for(lambda: holds(first, 3), timeout=60, interval=0.5, what="3 s in the first segment")
    wait_for(
        lambda: holds(rtmp.recorded()[0], 2), timeout=60, interval=0.5, what="2 s at the ingest"
    )

    # The backend restarts: the first segment stays playable, a second one starts.
    stack.restart()
    assert stopped(stack, first)  # the old backend closed it before exiting
    wait_state(alice, "joined", timeout=30)
    wait_for(lambda: len(mine()) == 2, timeout=30, what="a second segment")
    before = probe(first)
    assert (before.width, before.height) == (1280, 720)
    assert before.duration > 3, before
    assert before.audio_seconds > 3, before
    assert before.loudest > 0.01, before  # somebody spoke, and it is in the mix
    assert before.corrupt == 0, before  # closed properly, not cut
    second = mine()[1]
    wait_for(lambda: holds(second, 1, voice=False), timeout=60, interval=0.5, what="1 s more")

    # The meeting ends: the organizer gets the download link, for them only.
    alice.click('[data-action="leave"]')
    mail = wait_for(
        lambda: [m for m in notices(stack) if "/recordings/" in m.get_content()],
        timeout=30,
        what="the organizer's mail",
    )[0]
    assert mail["To"] == f"{user.login}@example.org"
    url = re.search(r"http\S+/recordings/(\d+)", mail.get_content())
    assert url is not None
    rec_id = url.group(1)
    assert stopped(stack, second)  # logged before the mail was sent
    after = probe(second)
    assert (after.width, after.height) == (1280, 720) and after.duration > 1, after
    assert after.corrupt == 0, after

    # What the ingest received is the same composed output.
    rtmp.stop()
    streamed = probe(rtmp.recorded()[0])
    assert (streamed.width, streamed.height) == (1280, 720) and streamed.duration > 2, streamed
    assert streamed.audio_seconds > 2 and streamed.loudest > 0.01, streamed
    assert streamed.corrupt == 0, streamed
    assert KEY not in stack.log_text()
    assert "rtmp://127.0.0.1" in stack.log_text()  # logged, masked

    # `visio recordings list`: one line, ending with the files.
    lines = stack.visio("recordings", "list").stdout.splitlines()
    line = next(x for x in lines if x.startswith(f"{rec_id}\t"))
    assert str(first) in line and str(second) in line and "\tdone\t" in line

    # Download: the organizer signed in to the portal gets the files; nobody else does.
    page = browsers.launch().new_page()
    anonymous = page.request.get(f"{stack.web_url}recordings/{rec_id}", max_redirects=0)
    assert anonymous.status == 303 and anonymous.headers["location"].startswith("/login")
    sign_in(page, stack, user.login)
    listing = page.request.get(f"{stack.web_url}recordings/{rec_id}")
    assert listing.ok and second.name in listing.text()
    got = page.request.get(f"{stack.web_url}recordings/{rec_id}/1")
    assert got.ok and got.headers["content-type"] == "video/mp4"
    assert got.body() == first.read_bytes()
    other = browsers.launch().new_page()
    sign_in(other, stack, new_user(stack).login)
    assert other.request.get(f"{stack.web_url}recordings/{rec_id}/1").status == 404

    # `visio recordings delete`: the row and its files go.
    stack.visio("recordings", "delete", rec_id)
    assert not first.exists() and not second.exists()
    assert not any(
        x.startswith(f"{rec_id}\t") for x in stack.visio("recordings", "list").stdout.splitlines()
    )


def sign_in(page: Page, stack: Stack, login: str) -> None:
    page.goto(stack.web_url + "login")
    page.get_by_label("Identifiant").fill(login)
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/$"))


def test_audio_room_recording_shows_a_card_and_carries_the_voice(
    stack: Stack, user: DavUser, browsers: Browsers
) -> None:
    link = book(
        user,
        "audio-recorded.ics",
        categories="Audio,Enregistrement",
        extra=f"ORGANIZER:mailto:{user.login}@example.org\nX-VISIO-LOBBY:FALSE",
    )
    before = set(segments(stack))
    page = open_room(browsers.launch("speech"), link, lang="en")
    assert "records this meeting" in page.locator('[data-role="consent"]').inner_text()
    enter(page, "Alice")
    assert page.locator('[data-role="recording-indicator"]').inner_text().endswith("Recording")
    new = wait_for(lambda: set(segments(stack)) - before, timeout=20, what="a recording")
    (path,) = new
    # Her voice, although nobody else was there to hear it: wait until the file holds it.
    wait_for(lambda: holds(path, 2), timeout=60, interval=0.5, what="2 s with her voice")
    page.click('[data-action="leave"]')
    # This file's own line (another room's recording may stop meanwhile): it is final.
    wait_for(lambda: stopped(stack, path), timeout=30, what="the recording stopped")
    got = probe(path)
    assert (got.width, got.height) == (1280, 720) and got.duration > 2, got
    assert got.loudest > 0.01, got
    assert got.corrupt == 0, got  # closed: no packet cut short
