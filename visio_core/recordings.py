"""Meeting recordings: one row per room occurrence, one file per segment.

A segment is what one run of a room's recorder wrote: a backend restart, or a
room emptied and joined again, starts the next one. The organizer (the room's
owner login) is the only person the files are served to. Rows and files older
than the retention are deleted together (`expired`, `Recordings.delete`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from visio_core.db import Conn, Database, Row, now_stamp

_STAMP = "%Y-%m-%dT%H:%M:%SZ"


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime(_STAMP)


def parse_stamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _STAMP).replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Segment:
    id: int
    path: Path
    size: int
    started_at: str
    ended_at: str | None


@dataclass(frozen=True)
class Recording:
    id: int
    room_id: str
    occurrence: str
    owner: str
    summary: str
    state: str  # "recording" | "done"
    notified: bool
    started_at: str
    ended_at: str | None
    segments: tuple[Segment, ...] = field(default_factory=tuple)

    @property
    def size(self) -> int:
        return sum(s.size for s in self.segments)

    @property
    def last_activity(self) -> str:
        ends = [s.ended_at or s.started_at for s in self.segments]
        return max([self.ended_at or self.started_at, *ends])


def expired(recordings: Iterable[Recording], now: dt.datetime, days: int) -> list[Recording]:
    """Finished recordings whose last activity is older than `days` days (0: keep forever).

    A recording still being written is never expired, however old it started.
    """
    if days <= 0:
        return []
    horizon = now - dt.timedelta(days=days)
    return [r for r in recordings if r.state == "done" and parse_stamp(r.last_activity) < horizon]


class Recordings:
    def __init__(self, db: Database) -> None:
        self.db = db

    # reads ---------------------------------------------------------------
    def _segments(self, conn: Conn, rec_id: int) -> tuple[Segment, ...]:
        rows = conn.execute(
            "SELECT id, path, size, started_at, ended_at FROM recording_segments"
            " WHERE recording_id = ? ORDER BY id",
            (rec_id,),
        ).fetchall()
        return tuple(
            Segment(r["id"], Path(r["path"]), r["size"], r["started_at"], r["ended_at"])
            for r in rows
        )

    def _build(self, conn: Conn, row: Row) -> Recording:
        return Recording(
            id=row["id"],
            room_id=row["room_id"],
            occurrence=row["occurrence"],
            owner=row["owner"],
            summary=row["summary"],
            state=row["state"],
            notified=bool(row["notified"]),
            started_at=row["started_at"],
            ended_at=row["ended_at"],
            segments=self._segments(conn, row["id"]),
        )

    def get(self, rec_id: int) -> Recording | None:
        with self.db.reading() as conn:
            row = conn.execute("SELECT * FROM recordings WHERE id = ?", (rec_id,)).fetchone()
            return self._build(conn, row) if row else None

    def all(self) -> list[Recording]:
        with self.db.reading() as conn:
            rows = conn.execute("SELECT * FROM recordings ORDER BY started_at, id").fetchall()
            return [self._build(conn, r) for r in rows]

    def of_owner(self, owner: str) -> list[Recording]:
        """An organizer's recordings, the latest first."""
        with self.db.reading() as conn:
            rows = conn.execute(
                "SELECT * FROM recordings WHERE owner = ? ORDER BY started_at DESC, id DESC",
                (owner,),
            ).fetchall()
            return [self._build(conn, r) for r in rows]

    # writes --------------------------------------------------------------
    def open(self, room_id: str, occurrence: str, owner: str, summary: str) -> int:
        """The recording of this occurrence (made on first use), marked as being written."""
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO recordings (room_id, occurrence, owner, summary) VALUES (?, ?, ?, ?)"
                " ON CONFLICT(room_id, occurrence) DO UPDATE SET state = 'recording',"
                " summary = excluded.summary",
                (room_id, occurrence, owner, summary),
            )
            (rec_id,) = conn.execute(
                "SELECT id FROM recordings WHERE room_id = ? AND occurrence = ?",
                (room_id, occurrence),
            ).fetchone()
            return int(rec_id)

    def add_segment(self, rec_id: int, path: Path) -> int:
        with self.db.transaction() as conn:
            return conn.insert_id(
                "INSERT INTO recording_segments (recording_id, path) VALUES (?, ?)",
                (rec_id, str(path)),
            )

    def end_segment(self, segment_id: int, size: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE recording_segments SET size = ?, ended_at = ? WHERE id = ?",
                (size, now_stamp(), segment_id),
            )

    def finish(self, rec_id: int) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE recordings SET state = 'done', ended_at = ? WHERE id = ?",
                (now_stamp(), rec_id),
            )

    def mark_notified(self, rec_id: int) -> bool:
        """True the first time only: the organizer is told once per recording."""
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE recordings SET notified = 1 WHERE id = ? AND notified = 0", (rec_id,)
            )
            return cur.rowcount == 1

    def close_abandoned(self) -> int:
        """At start-up: what a killed backend left "recording" is finished (its files stay)."""
        with self.db.transaction() as conn:
            for row in conn.execute(
                "SELECT id, path FROM recording_segments WHERE ended_at IS NULL"
            ).fetchall():
                path = Path(row["path"])
                size = path.stat().st_size if path.exists() else 0
                conn.execute(
                    "UPDATE recording_segments SET size = ?, ended_at = ? WHERE id = ?",
                    (size, now_stamp(), row["id"]),
                )
            cur = conn.execute(
                "UPDATE recordings SET state = 'done', ended_at = ? WHERE state = 'recording'",
                (now_stamp(),),
            )
            return cur.rowcount

    def delete(self, rec_id: int) -> Recording | None:
        """Remove the row and its files; returns what was removed (None: no such id)."""
        found = self.get(rec_id)
        if found is None:
            return None
        for segment in found.segments:
            segment.path.unlink(missing_ok=True)
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM recording_segments WHERE recording_id = ?", (rec_id,))
            conn.execute("DELETE FROM recordings WHERE id = ?", (rec_id,))
        return found
