"""Faults around a recording never take the room down: a full disk, an unreachable ingest.

The full disk is real: the stack's recordings folder is a 256 KiB tmpfs (root
mounts it, as CI runs as root); the ingest is a port nobody listens on.
"""

from __future__ import annotations

import email
import email.policy
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.browser.conftest import Browsers, book
from tests.browser.pages import open_room, participant_video, wait_playing, wait_state
from tests.e2e.conftest import new_user
from tests.recording.media import holds, probe
from tests.recording.rtmp import RtmpServer
from tests.recording.test_recorded_meeting import enter
from tests.support.stack import Stack, free_port, wait_for

KEY = "NEVER-IN-LOGS-42"


@pytest.fixture(scope="module")
def full_stack(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("full-disk")
    recordings = data / "recordings"
    recordings.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(recordings)], check=False
    )
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root): no real full disk")
    s = Stack(data).start()
    try:
        yield s
    finally:
        s.stop()
        subprocess.run(["umount", str(recordings)], check=False)


def notices(stack: Stack) -> list[str]:
    texts = []
    for path in sorted((stack.data_dir / "mail").glob("notice-*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        texts.append(f"{msg['To']}\n{msg['Subject']}\n{msg.get_content()}")
    return texts


def test_full_disk_and_unreachable_ingest_leave_the_room_running(
    full_stack: Stack, browsers: Browsers
) -> None:
    user = new_user(full_stack)
    url = f"rtmp://127.0.0.1:{free_port()}/live/{KEY}"
    link = book(
        user,
        "faults.ics",
        extra=(
            f"ORGANIZER:mailto:{user.login}@example.org\n"
            f"X-VISIO-LOBBY:FALSE\nX-VISIO-RECORD:TRUE\nX-VISIO-STREAM-URL:{url}"
        ),
    )
    alice = open_room(browsers.launch("speech"), link)
    enter(alice, "Alice")

    log = full_stack.log_text
    wait_for(lambda: "cannot connect" in log(), timeout=30, what="the ingest failure logged")
    wait_for(lambda: "stopped: disk full" in log(), timeout=60, what="the full disk logged")
    mails = wait_for(lambda: len(notices(full_stack)) >= 2 and notices(full_stack), timeout=30)
    assert all(m.startswith(f"{user.login}@example.org\n") for m in mails)
    assert any("diffusion en direct" in m for m in mails)
    assert any("enregistrement" in m.lower() and "arrêté" in m for m in mails)
    assert KEY not in log() and not any(KEY in m for m in mails)
    assert "rtmp://127.0.0.1" in log()  # the target is named, its key masked

    # The room goes on: still joined, and a newcomer sees and hears Alice.
    assert alice.evaluate("document.body.dataset.roomState") == "joined"
    bob = open_room(browsers.launch(), link, lang="en")
    enter(bob, "Bob")
    wait_playing(bob, participant_video("Alice"))
    wait_state(alice, "joined")
    # What was written before the disk filled is still there.
    files = list(Path(full_stack.data_dir / "recordings").glob("*/*.mp4"))
    assert files and files[0].stat().st_size > 0


def test_stream_only_meeting_reconnects_when_the_ingest_comes_back(
    stack: Stack, browsers: Browsers, rtmp: RtmpServer
) -> None:
    user = new_user(stack)
    link = book(
        user,
        "stream-only.ics",
        extra=f"X-VISIO-LOBBY:FALSE\nX-VISIO-STREAM-URL:{rtmp.url(KEY)}",
    )
    before = stack.log_text().count("sending to")
    page = open_room(browsers.launch("speech"), link)
    assert "diffusée en direct" in page.locator('[data-role="consent"]').inner_text()
    enter(page, "Alice")
    first = wait_for(lambda: rtmp.recorded(), timeout=20, what="the stream")[0]
    wait_for(lambda: first.stat().st_size > 100_000, timeout=20, what="the stream flowing")

    rtmp.stop()  # the ingest drops
    wait_for(lambda: "connection lost" in stack.log_text(), timeout=20, what="the drop logged")
    rtmp.start()  # and comes back on the same address
    wait_for(lambda: len(rtmp.recorded()) == 2, timeout=40, what="the stream resumed")
    second = rtmp.recorded()[-1]
    wait_for(lambda: holds(second, 1), timeout=60, interval=0.5, what="her voice streamed again")
    assert stack.log_text().count("sending to") >= before + 2
    assert KEY not in stack.log_text()
    assert page.evaluate("document.body.dataset.roomState") == "joined"
    page.click('[data-action="leave"]')
    rtmp.stop()
    got = probe(second)
    assert (got.width, got.height) == (1280, 720) and got.loudest > 0.01, got
    assert got.corrupt == 0, got  # nginx finalised it on a graceful stop
    assert not list((stack.data_dir / "recordings").glob(f"*/*{KEY}*"))
