"""Three mail workers, one outbox, 1,000 messages: each recipient gets exactly one.

The workers are separate processes with their own connections, as on three
nodes, running the real mail worker loop (conference_backend.mailer.Mailer.run)
against a real SMTP server (aiosmtpd). PostgreSQL is the case that matters
(workers on several machines claim with SKIP LOCKED); SQLite runs the same code.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from conference_backend.mailer import Mailer
from tests.invitations.mail import Sink
from tests.support import database
from tests.support.ics import event
from tests.support.stack import ROOT, wait_for
from visio_core import outbox, tokens
from visio_core import settings as settings_mod
from visio_core.db import Database
from visio_core.itip import Outgoing

MEETINGS, PER_MEETING = 50, 20  # 1,000 messages


def run_worker(env: dict[str, str]) -> None:
    """A mail worker process: what `visio serve` runs on each node."""
    settings, _ = settings_mod.load(env)
    db = Database(settings.database)
    mailer = Mailer(settings, db, tokens.load_or_create_key(settings.key_path))
    asyncio.run(mailer.run())


def fill(db: Database) -> list[str]:
    """Queue MEETINGS invitations of PER_MEETING attendees each, as organizers' PUTs do."""
    everyone: list[str] = []
    for m in range(MEETINGS):
        uid = f"meeting-{m}"
        people = [f"m{m}-p{i}@example.org" for i in range(PER_MEETING)]
        lines = ["ORGANIZER;CN=Alice:mailto:alice@example.org"]
        lines += [f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{p}" for p in people]
        with db.transaction() as conn:
            outbox.add_change(
                conn,
                owner="alice",
                uid=uid,
                organizer="alice@example.org",
                organizer_name="Alice",
                room_id=None,
                calendar=event(uid=uid, summary=f"Réunion {m}", extra="\n".join(lines)),
                messages=[Outgoing("REQUEST", None, 0, tuple(people))],
                is_update=False,
            )
        everyone += people
    return everyone


@pytest.fixture
def sink() -> Iterator[Sink]:
    s = Sink().start()
    try:
        yield s
    finally:
        s.stop()


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
def test_three_workers_send_each_of_1000_messages_once(
    kind: str, sink: Sink, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue("postgres_url") if kind == "postgresql" else ""
    target = database.target(tmp_path / "visio.sqlite3", server)
    db = Database(target, upgrade=True)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}
    env = {
        **clean,
        **sink.env,
        "VISIO_CONFIG": str(ROOT / "radicale.conf"),
        "VISIO_DATA_DIR": str(tmp_path),
        "VISIO_LANGUAGE": "en",
    }
    # The nodes' data folders differ: the database is named, SQLite's too.
    env["VISIO_DATABASE_URL"] = str(target) if server else f"sqlite:///{target}"
    key = tokens.load_or_create_key(tmp_path / "secret.key")
    nodes = []
    for n in range(3):  # three nodes: each its own data folder, the same key
        (tmp_path / f"node{n}").mkdir()
        (tmp_path / f"node{n}" / "secret.key").write_bytes((tmp_path / "secret.key").read_bytes())
        assert tokens.load_or_create_key(tmp_path / f"node{n}" / "secret.key") == key
        nodes.append({**env, "VISIO_DATA_DIR": str(tmp_path / f"node{n}")})
    spawn = multiprocessing.get_context("spawn")
    workers = [spawn.Process(target=run_worker, args=(e,), daemon=True) for e in nodes]
    for w in workers:
        w.start()
    try:
        everyone = fill(db)  # the workers are polling already: they race for it
        box = outbox.Outbox(db)
        wait_for(
            lambda: len(box.listing(("sent",))) == len(everyone),
            timeout=300,
            interval=0.5,
            what="every message marked sent",
        )
        assert box.listing(("pending", "failed")) == []
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.join(30)
    got = Counter(m.to for m in sink.all())
    assert len(everyone) == 1000
    assert {a: n for a, n in got.items() if n != 1} == {}
    assert sorted(got) == sorted(everyone)
    with db.reading() as conn:
        senders = {r[0] for r in conn.execute("SELECT DISTINCT claimed_by FROM outbox")}
    assert len(senders) >= 2, senders  # the work was shared, not done by one worker
    db.close()
