"""A recording of a room that lives on the second media worker (issue 15).

The recorder runs where the room is; the organizer's buttons reach it through
the front (POST /recordings/control/… handed to the room's worker), and the file
is served by the front, whichever worker wrote it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser import pages
from tests.browser.conftest import Browsers, book
from tests.browser.pages import join_as_guest, open_room, wait_state
from tests.e2e.conftest import PASSWORD, new_user
from tests.recording.media import holds, probe
from tests.recording.test_recorded_meeting import segments, sign_in, stopped
from tests.support.stack import Stack, wait_for


@pytest.fixture(scope="module")
def two(namespace: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    s = Stack(
        tmp_path_factory.mktemp("rec-workers"),
        extra_env={"VISIO_MEDIA_WORKERS": "2", "VISIO_RECORD_START": "button"},
    ).start()
    try:
        yield s
    finally:
        s.stop()


def last_placed(stack: Stack) -> str:
    """The worker the log placed the latest room on (a page's socket opens its room)."""
    placed = re.findall(r"room (\w+) placed on (worker-\d)", stack.log_text())
    assert placed, "no room placed"
    return placed[-1][1]


def test_the_organizer_records_a_room_held_by_worker_2(two: Stack, browsers: Browsers) -> None:
    organizer = new_user(two)
    # Someone already meets elsewhere: that room takes worker-1 (ties go by name).
    other = open_room(browsers.launch(), book(organizer, "other.ics", extra="X-VISIO-LOBBY:FALSE"))
    join_as_guest(other, "Ailleurs")
    wait_state(other, "joined")
    assert last_placed(two) == "worker-1"

    link = book(
        organizer,
        "recorded.ics",
        extra=f"ORGANIZER:mailto:{organizer.login}@example.org\n"
        "X-VISIO-LOBBY:FALSE\nX-VISIO-RECORD:TRUE",
    )
    host = open_room(browsers.launch("speech"), link)
    host.click('[data-action="accept-recording"]')
    pages.sign_in(host, organizer.login, PASSWORD)
    wait_state(host, "joined")
    assert last_placed(two) == "worker-2"

    host.click('[data-action="start-recording"]')
    host.wait_for_function("() => document.body.dataset.recording === 'on'", timeout=20000)
    path = wait_for(lambda: segments(two), timeout=30, what="a segment")[0]
    wait_for(lambda: holds(path, 2), timeout=60, interval=0.5, what="2 s with a voice recorded")
    host.click('[data-action="stop-recording"]')
    wait_for(lambda: stopped(two, path), timeout=30, what="the recording stopped")
    got = probe(path)
    assert got.duration > 2 and got.loudest > 0.01 and got.corrupt == 0, got

    # The front serves the file, whichever worker wrote it.
    line = next(x for x in two.visio("recordings", "list").stdout.splitlines() if str(path) in x)
    rec_id = line.split("\t")[0]
    page = browsers.launch().new_page()
    sign_in(page, two, organizer.login)
    got_file = page.request.get(f"{two.web_url}recordings/{rec_id}")
    assert got_file.ok and got_file.body() == path.read_bytes()
