"""Mail workers sharing one outbox: claims, holds and leases, on SQLite and PostgreSQL.

Each worker has its own connection (its own `Database`), as workers on several
nodes do; the database decides who sends what.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.ics import event
from visio_core import outbox as outbox_mod
from visio_core import resets
from visio_core.db import Database
from visio_core.itip import Outgoing
from visio_core.outbox import Outbox


def queue(db: Database, uid: str, recipients: list[str]) -> int:
    with db.transaction() as conn:
        return outbox_mod.add_change(
            conn,
            owner="alice",
            uid=uid,
            organizer="alice@example.org",
            organizer_name="Alice",
            room_id=None,
            calendar=event(uid=uid, extra="ORGANIZER:mailto:alice@example.org"),
            messages=[Outgoing("REQUEST", None, 0, tuple(recipients))],
            is_update=False,
        )


@pytest.fixture
def second(any_database: Database) -> Database:
    """Another connection to the same database: the other node's worker."""
    return Database(any_database.path if any_database.path else any_database.url)


def test_a_retried_change_queues_nothing_new(any_database: Database) -> None:
    assert queue(any_database, "m1", ["a@x.org", "b@x.org"]) == 2
    assert queue(any_database, "m1", ["a@x.org", "b@x.org", "c@x.org"]) == 1


def test_two_workers_never_claim_the_same_message(any_database: Database, second: Database) -> None:
    queue(any_database, "m1", [f"p{i}@x.org" for i in range(30)])
    first_box, second_box = Outbox(any_database), Outbox(second)
    mine = first_box.claim("w1", limit=20)
    theirs = second_box.claim("w2", limit=20)
    assert len(mine) == 20 and len(theirs) == 10
    assert not {p.id for p in mine} & {p.id for p in theirs}
    assert first_box.claim("w1") == [] and first_box.due() == []
    # Each holds its own messages only.
    assert first_box.hold(mine[0].id, "w1")
    assert not first_box.hold(theirs[0].id, "w1")
    second.close()


def test_claims_at_once_split_the_outbox(any_database: Database, tmp_path: Path) -> None:
    queue(any_database, "m1", [f"p{i}@x.org" for i in range(200)])
    target = any_database.path if any_database.path else any_database.url
    workers = [Database(target) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            batches = list(
                pool.map(lambda n: Outbox(workers[n]).claim(f"w{n}", limit=60), range(4))
            )
    finally:
        for db in workers:
            db.close()
    ids = [p.id for batch in batches for p in batch]
    assert len(ids) == len(set(ids)) == 200


def test_a_dead_workers_batch_goes_to_another_after_the_lease(
    any_database: Database, second: Database
) -> None:
    queue(any_database, "m1", ["a@x.org", "b@x.org"])
    now = time.time()
    dead = Outbox(any_database).claim("dead", now=now)
    assert len(dead) == 2
    alive = Outbox(second)
    assert alive.claim("alive", now=now + 60) == []
    later = now + outbox_mod.CLAIM_SECONDS + 1
    taken = alive.claim("alive", now=later)
    assert [p.id for p in taken] == [p.id for p in dead]
    # The dead worker waking up may not send them any more.
    assert not Outbox(any_database).hold(dead[0].id, "dead")
    assert alive.hold(taken[0].id, "alive", now=later)
    alive.mark_sent([taken[0].id])
    assert not alive.hold(taken[0].id, "alive")
    assert [r.recipient for r in alive.listing(("sent",))] == ["a@x.org"]
    second.close()


def test_a_restarted_worker_takes_its_claims_back_at_once(any_database: Database) -> None:
    queue(any_database, "m1", ["a@x.org", "b@x.org"])
    box = Outbox(any_database)
    claimed = box.claim("node-a")
    assert box.claim("node-b") == []
    assert box.release("node-b") == 0  # another node's claims are not its to release
    assert box.release("node-a") == 2  # node-a restarted: its old run is dead
    assert [p.id for p in box.claim("node-a")] == [p.id for p in claimed]


def test_a_failed_message_is_retried_by_any_worker(any_database: Database) -> None:
    queue(any_database, "m1", ["a@x.org"])
    box = Outbox(any_database)
    (p,) = box.claim("w1")
    assert not box.mark_failed(p.id, p.attempts, "451 try later", permanent=False)
    assert box.claim("w2") == []  # its backoff, not its claim, keeps it now
    box.retry_now()
    (again,) = box.claim("w2")
    assert again.id == p.id and again.attempts == 1


def test_a_reset_request_is_claimed_once(any_database: Database, second: Database) -> None:
    now = time.time()
    assert resets.ask(any_database, "alice", "fr", 300, now)
    first = resets.claim(any_database, now=now)
    assert first is not None and first.login == "alice"
    assert resets.claim(second, now=now) is None
    assert resets.due(second, now=now) == []
    # Not done within the lease (the worker died): another worker mails it.
    again = resets.claim(second, now=now + resets.CLAIM_SECONDS + 1)
    assert again is not None and again.id == first.id
    resets.done(second, again.id, "sent")
    assert resets.claim(any_database, now=now + 10 * resets.CLAIM_SECONDS) is None
    second.close()
