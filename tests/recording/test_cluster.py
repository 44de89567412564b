"""A recording across nodes: three nodes, three roles (issue 16).

Three real nodes (tests/support/cluster.py, VISIO_RECORD_START=button on all)
in the recording tests' loopback namespace, sharing one recordings folder as
shared storage would. A probe join places the room on some node (the host);
the organizer's page comes in through another node, whose front relays its
signalling and its start/stop buttons (POST /recordings/control/{token}) to
the host, where the recorder runs and writes into the shared folder; a third
node serves the file to the organizer, byte for byte.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page

from tests.browser import pages
from tests.browser.conftest import Browsers
from tests.browser.pages import open_room, wait_state
from tests.e2e.conftest import PASSWORD, new_user
from tests.recording.media import holds, probe
from tests.recording.test_recorded_meeting import sign_in, stopped
from tests.room.signal import NO_LOBBY, Client, book
from tests.support.aio import run
from tests.support.cluster import NAMES, Cluster, three_nodes
from tests.support.stack import wait_for


@pytest.fixture(scope="module")
def cluster(
    namespace: None, tmp_path_factory: pytest.TempPathFactory, postgres_url: str
) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("rec-cluster")
    with three_nodes(root, postgres_url, extra={"VISIO_RECORD_START": "button"}) as nodes:
        yield nodes


def placed(cluster: Cluster, link: str, room_id: str, fillers: list[tuple[str, str]]) -> str:
    """The first join places the room: a probe joins through node b, and leaves. Two other
    rooms, held meanwhile, take the least loaded nodes first (a, then b): ours goes to c."""

    async def probe_join() -> str:
        held: list[Client] = []
        try:
            for filler_link, filler_room in fillers:
                held.append(await Client.open(filler_link))
                assert (await held[-1].join(name="Filler"))["type"] == "joined"
                await asyncio.wait_for(cluster.host_of(filler_room), 30)
            held.append(await Client.open(cluster.through(link, "b")))
            assert (await held[-1].join(name="Probe"))["type"] == "joined"
            return await asyncio.wait_for(cluster.host_of(room_id), 30)
        finally:
            for client in held:
                await client.close()

    return run(probe_join())


def control(page: Page, action: str, origin: str) -> None:
    """Click start or stop; the page's POST goes to the node it came through, and succeeds."""
    with page.expect_response(lambda r: "/recordings/control/" in r.url) as answer:
        page.click(f'[data-action="{action}-recording"]')
    assert answer.value.url.startswith(origin), answer.value.url
    assert answer.value.ok, answer.value.status


def test_recorded_on_the_host_started_through_one_node_served_by_another(
    cluster: Cluster, browsers: Browsers
) -> None:
    organizer = new_user(cluster.nodes["a"])
    link, room_id = book(
        organizer,
        "recorded.ics",
        extra=f"ORGANIZER:mailto:{organizer.login}@example.org\n"
        "X-VISIO-LOBBY:FALSE\nX-VISIO-RECORD:TRUE",
    )
    fillers = [book(organizer, f"filler{i}.ics", extra=NO_LOBBY) for i in range(2)]
    host = placed(cluster, link, room_id, fillers)
    # Hosted on c, buttons through b, file through a; should placement's CPU figures pick
    # another host, the roles follow it: always three distinct nodes.
    entry = "b" if host != "b" else "c"
    server = next(n for n in NAMES if n not in (host, entry))
    origin = cluster.nodes[entry].web_url

    page = open_room(browsers.launch("speech"), cluster.through(link, entry))
    page.click('[data-action="accept-recording"]')
    pages.sign_in(page, organizer.login, PASSWORD)
    wait_state(page, "joined", timeout=60)
    assert run(asyncio.wait_for(cluster.host_of(room_id), 30)) == host

    control(page, "start", origin)
    page.wait_for_function("() => document.body.dataset.recording === 'on'", timeout=30000)

    def written() -> list[Path]:
        return sorted(cluster.recordings.glob("*/*.mp4"))

    path = wait_for(written, timeout=60, what="a file in the shared recordings folder")[0]
    wait_for(lambda: holds(path, 2), timeout=90, interval=0.5, what="2 s with a voice recorded")
    control(page, "stop", origin)
    page.wait_for_function("() => document.body.dataset.recording === 'off'", timeout=30000)
    wait_for(lambda: stopped(cluster.nodes[host], path), timeout=60, what="the file closed")
    got = probe(path)
    print(f"room on {host}, buttons through {entry}, file served by {server}: {got}")
    assert got.duration > 2 and got.loudest > 0.01 and got.corrupt == 0, got
    assert got.audio_seconds > 2 and got.video_packets > 0, got

    listed = cluster.nodes[server].visio("recordings", "list").stdout.splitlines()
    rec_id = next(x for x in listed if str(path) in x).split("\t")[0]
    reader = browsers.launch().new_page()
    sign_in(reader, cluster.nodes[server], organizer.login)
    download = reader.request.get(f"{cluster.nodes[server].web_url}recordings/{rec_id}")
    assert download.ok, download.status
    assert download.body() == path.read_bytes()
