"""The backend stopping while a recorder starts or stops (its cleanup cancels the
service's pass): the recorder process still ends, its file is closed and its segment
listed as ended, and "recording stopped" is only logged once the file is final."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.recording.media import probe
from tests.support.database import open_db
from visio_core.categories import RoomKind
from visio_core.recordings import Recordings
from visio_core.registry import Registry, Room
from visio_core.settings import resolve
from visio_rooms.recorder.service import RecordingService
from visio_rooms.rooms import LiveRoom, RoomManager


@pytest.fixture
def service(tmp_path: Path) -> Iterator[RecordingService]:
    db = open_db(tmp_path / "visio.sqlite3")
    settings = resolve({}, {"VISIO_DATA_DIR": str(tmp_path), "VISIO_RECORDING_PRESET": "ultrafast"})
    try:
        yield RecordingService(settings, db, RoomManager(Registry(db)))
    finally:
        for child in multiprocessing.active_children():  # only if a test failed half-way
            child.kill()
            child.join()
        db.close()


def run(scenario: Coroutine[Any, Any, None]) -> None:
    """In a thread of its own: Playwright's sync API (other tests of this package) keeps an
    event loop running in the main thread."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, scenario).result()


def live_room() -> LiveRoom:
    row = Room(
        room_id="r1",
        uid="u1",
        owner="alice",
        calendar_path="alice/calendar",
        href="u1.ics",
        kind=RoomKind.VIDEO,
        token_hash="h" * 64,
        room_number="123456789",
        summary="Point",
        event="",
        options={"record": True},
    )
    return LiveRoom(row, "20260101", None)


def closed_and_listed(
    service: RecordingService, caplog: pytest.LogCaptureFixture, written: bool
) -> None:
    assert multiprocessing.active_children() == []  # the recorder process has ended
    (rec,) = Recordings(service.db).all()
    (segment,) = rec.segments
    assert segment.ended_at is not None
    lines = [r.getMessage() for r in caplog.records if "recording stopped" in r.getMessage()]
    assert len(lines) == 1, lines
    assert not any(r.levelno >= logging.WARNING for r in caplog.records), caplog.text
    if not written and not segment.path.exists():  # stopped before its first frame: no file
        assert segment.size == 0 and f"nothing was written to {segment.path}" in lines[0]
        return
    assert segment.size == segment.path.stat().st_size > 0
    assert f"file {segment.path} closed" in lines[0], lines
    got = probe(segment.path)
    assert (got.width, got.height) == (1280, 720) and got.corrupt == 0, got


def test_a_stop_cut_short_by_the_shutdown_still_closes_the_file(
    service: RecordingService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        await service.start(live_room(), record=True, url=None)
        path = service.active["r1"].recorder.file_path
        assert path is not None
        deadline = asyncio.get_running_loop().time() + 60
        while not path.exists():  # its first frame is written
            assert asyncio.get_running_loop().time() < deadline, "no frame written"
            await asyncio.sleep(0.05)
        stopping = asyncio.create_task(service.stop("r1", ended=True))
        await asyncio.sleep(0)  # the pass has told the recorder to stop, and waits
        stopping.cancel()  # the backend's cleanup cancels the pass
        await asyncio.gather(stopping, return_exceptions=True)
        await service.shutdown()

    run(scenario())
    closed_and_listed(service, caplog, written=True)


def test_a_start_cut_short_by_the_shutdown_still_closes_the_file(
    service: RecordingService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)

    async def scenario() -> None:
        starting = asyncio.create_task(service.start(live_room(), record=True, url=None))
        await asyncio.sleep(0)  # the recorder process is being spawned
        starting.cancel()
        await asyncio.gather(starting, return_exceptions=True)
        await service.shutdown()

    run(scenario())
    closed_and_listed(service, caplog, written=False)
