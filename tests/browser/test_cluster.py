"""Two browsers through two nodes, and the node hosting their room killed (issue 16).

Three real nodes (tests/support/cluster.py) inside the browser tests' loopback
namespace: Redis is started in it, PostgreSQL is reached through its socket.
A probe join places the room; two Chromium pages then come in through the two
OTHER nodes, whose fronts relay their signalling to the host, and see each
other. The host is killed (SIGKILL to its whole process group: front and
worker, as a machine lost): both pages, by themselves, see each other again
within 10 s, on one of the two nodes left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Browsers
from tests.browser.pages import join_as_guest, open_room, participant_video, wait_playing
from tests.e2e.conftest import new_user
from tests.room.signal import NO_LOBBY, Client, book
from tests.support.aio import run
from tests.support.cluster import NAMES, Cluster, three_nodes

BACK_WITHIN = 10.0  # the promise

# Passive watch of the page after the kill: its connection states (room.js sets
# data-connection) and its socket attempts, with their times. A video playing again
# only counts once the page went through "reconnecting"; the times are printed.
WATCH = """() => {
  window.__since = [];
  const mark = (what) => window.__since.push([Date.now(), what]);
  new MutationObserver(() => mark(document.body.dataset.connection))
    .observe(document.body, { attributes: true, attributeFilter: ['data-connection'] });
  const Native = window.WebSocket;
  window.WebSocket = function (...args) {
    const ws = new Native(...args);
    ws.addEventListener('open', () => mark('open'));
    ws.addEventListener('close', (e) => mark(`closed ${e.code}`));
    return ws;
  };
  window.WebSocket.prototype = Native.prototype;
  Object.assign(window.WebSocket, { CONNECTING: 0, OPEN: 1, CLOSING: 2, CLOSED: 3 });
}"""
BACK_UP = """() => window.__since.some(([, what]) => what === 'reconnecting')
  && document.body.dataset.connection === 'up'"""


@pytest.fixture(scope="module")
def cluster(
    namespace: None, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[Cluster]:
    with three_nodes(tmp_path_factory.mktemp("browser-cluster"), postgres_url) as nodes:
        yield nodes


def host_of(cluster: Cluster, link: str, room_id: str) -> str:
    """The first join places the room: a probe joins (through node a) and leaves."""

    async def probe() -> str:
        client = await Client.open(link)
        try:
            assert (await client.join(name="Probe"))["type"] == "joined"
            return await asyncio.wait_for(cluster.host_of(room_id), 30)
        finally:
            await client.close()

    return run(probe())


def playing_again(page: Page, name: str, killed: float) -> None:
    """The page went through "reconnecting", is up again and plays `name`'s video."""
    left = BACK_WITHIN - (time.monotonic() - killed)
    assert left > 0, f"not back within {BACK_WITHIN:.0f} s"
    page.wait_for_function(BACK_UP, timeout=left * 1000, polling=100)
    left = BACK_WITHIN - (time.monotonic() - killed)
    assert left > 0, f"not back within {BACK_WITHIN:.0f} s"
    wait_playing(page, participant_video(name), timeout=left)
    print(f"{name}'s video playing again {time.monotonic() - killed:.1f} s after the kill")


def timeline(page: Page, killed_at: float) -> str:
    """What the page went through since the kill (seconds after it: state or socket)."""
    marks = page.evaluate("window.__since || []")
    return ", ".join(f"{t / 1000 - killed_at:.1f} {what}" for t, what in marks)


def test_two_browsers_through_two_nodes_meet_and_survive_their_hosts_death(
    cluster: Cluster, browsers: Browsers
) -> None:
    user = new_user(cluster.nodes["a"])
    link, room_id = book(user, "across.ics", extra=NO_LOBBY)
    host = host_of(cluster, link, room_id)
    first, second = (n for n in NAMES if n != host)

    agathe = open_room(browsers.launch(), cluster.through(link, first))
    join_as_guest(agathe, "Agathe")
    basile = open_room(browsers.launch(), cluster.through(link, second))
    join_as_guest(basile, "Basile")
    wait_playing(agathe, participant_video("Basile"), timeout=60)
    wait_playing(basile, participant_video("Agathe"), timeout=60)
    # One room, on the node the probe placed it on, holding both pages.
    assert run(asyncio.wait_for(cluster.host_of(room_id, participants=2), 30)) == host
    for page in (agathe, basile):
        page.evaluate(WATCH)

    victim = cluster.nodes[host].proc
    assert victim is not None
    os.killpg(victim.pid, signal.SIGKILL)  # the machine is gone: front and worker
    killed, killed_at = time.monotonic(), time.time()
    try:
        playing_again(agathe, "Basile", killed)
        playing_again(basile, "Agathe", killed)
        back = time.monotonic() - killed
    finally:
        for page, name in ((agathe, "Agathe"), (basile, "Basile")):
            print(f"{name}'s page after the kill: {timeline(page, killed_at)}")
    print(
        f"room hosted on {host}, pages through {first} and {second}: both play each other's "
        f"video again {back:.1f} s after the kill"
    )
    assert back < BACK_WITHIN, back

    now = run(asyncio.wait_for(cluster.host_of(room_id, participants=2), 30))
    assert now in (first, second), now
    assert f"room {room_id} placed on worker-" in cluster.nodes[now].log_text()
