"""Retention: `visio recordings list|delete|purge`, and the backend's own purge at start."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from tests.support.database import open_db
from tests.support.stack import Stack, wait_for
from visio_core.recordings import Recordings


def recording(data: Path, room: str, ended: str) -> tuple[int, Path]:
    db = open_db(data / "visio.sqlite3")
    store = Recordings(db)
    rid = store.open(room, "20260101", "alice", f"Réunion {room}")
    path = data / "recordings" / room / f"{rid}.mp4"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 100)
    store.end_segment(store.add_segment(rid, path), 100)
    store.finish(rid)
    with db.transaction() as conn:
        conn.execute(
            "UPDATE recordings SET started_at = ?, ended_at = ? WHERE id = ?", (ended, ended, rid)
        )
        conn.execute(
            "UPDATE recording_segments SET started_at = ?, ended_at = ? WHERE recording_id = ?",
            (ended, ended, rid),
        )
    db.close()
    return rid, path


def test_cli_lists_purges_and_deletes(tmp_path: Path) -> None:
    stack = Stack(tmp_path, extra_env={"VISIO_RECORDING_DAYS": "30"})
    old, old_file = recording(tmp_path, "old", "2020-01-01T10:00:00Z")
    new, new_file = recording(tmp_path, "new", "2099-01-01T10:00:00Z")

    lines = stack.visio("recordings", "list").stdout.splitlines()
    assert len(lines) == 2
    assert lines[0].split("\t")[0] == str(old) and lines[0].endswith(str(old_file))
    assert lines[1].endswith(str(new_file)) and "Réunion new" in lines[1]

    assert "1 recording(s)" in stack.visio("recordings", "purge").stdout
    assert not old_file.exists() and new_file.exists()
    assert [x.split("\t")[0] for x in stack.visio("recordings", "list").stdout.splitlines()] == [
        str(new)
    ]

    stack.visio("recordings", "delete", str(new))
    assert not new_file.exists() and stack.visio("recordings", "list").stdout == ""
    missing = stack.visio("recordings", "delete", str(new), check=False)
    assert missing.returncode == 1 and "no recording" in missing.stderr


def test_backend_purges_and_tells_about_recordings_a_restart_ended(tmp_path: Path) -> None:
    _, old_file = recording(tmp_path, "old", "2020-01-01T10:00:00Z")
    _, kept_file = recording(tmp_path, "kept", "2099-01-01T10:00:00Z")
    # Ended by a backend restart yesterday, nobody came back: nobody was told yet.
    yesterday = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    untold, _ = recording(tmp_path, "untold", yesterday)
    stack = Stack(tmp_path, extra_env={"VISIO_RECORDING_DAYS": "7"})
    stack.add_user("alice", "pw-alice-123", email="alice@example.org")
    stack.start()
    try:
        wait_for(lambda: not old_file.exists(), timeout=20, what="the purge")
        assert kept_file.exists()
        assert "older than 7 days" in stack.log_text()
        mail = wait_for(
            lambda: [p.read_text() for p in (tmp_path / "mail").glob("notice-*.eml")],
            timeout=20,
            what="the late notice",
        )
        assert len(mail) == 1 and f"/recordings/{untold}" in mail[0]
        assert "To: alice@example.org" in mail[0] and "untold" in mail[0]
    finally:
        stack.stop()
