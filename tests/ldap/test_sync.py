"""The sync against a real slapd of 2,500 people, into a real accounts store and calendars.

One full sync runs first (module fixture); every test then changes the
directory, runs the sync the way `visio serve` or `visio ldap-sync` would, and
looks at what a user or an administrator would see.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ldap_sync.directory import DirectoryUnavailable
from ldap_sync.lock import held
from ldap_sync.provision import CALENDAR, Provisioner
from ldap_sync.store import SyncStore, may_book
from ldap_sync.sync import SyncReport
from tests.ldap.conftest import PASSWORD, ldap_env, load_settings
from tests.support import slapd as S
from tests.support.stack import ROOT
from visio_cli.ldap import build_syncer, sync_once
from visio_core.accounts import Accounts
from visio_core.db import Database

COUNT = 2500
PEOPLE = S.generate_people(COUNT, PASSWORD)
BOOKERS = PEOPLE[:40]


@dataclass
class World:
    slapd: S.Slapd
    env: dict[str, str]
    db: Database
    accounts: Accounts
    first: SyncReport

    def sync(self, full: bool, **kwargs) -> SyncReport:
        settings, sections = load_settings(self.env)
        return build_syncer(settings, sections, self.db, **kwargs).run(full=full)

    def provisioner(self) -> Provisioner:
        from caldav_plugin.app import radicale_configuration

        settings, sections = load_settings(self.env)
        return Provisioner(radicale_configuration(settings, sections), settings.language)

    def visio(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "visio_cli.main", *args],
            env=self._cli_env(),
            cwd=ROOT,
            text=True,
            capture_output=True,
            timeout=120,
        )

    def start_visio(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "visio_cli.main", *args],
            env=self._cli_env(),
            cwd=ROOT,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def _cli_env(self) -> dict[str, str]:
        return {**{k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}, **self.env}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("ldap-sync")
    for slapd in S.running_slapd(root / "slapd", S.base_ldif(PEOPLE, bookers=BOOKERS)):
        env = ldap_env(slapd, root / "var")
        settings, _ = load_settings(env)
        db = Database(settings.database)
        world = World(slapd, env, db, Accounts(db), first=SyncReport(full=True))
        world.first = world.sync(full=True)
        yield world
        db.close()


def test_first_sync_reads_everyone_with_addresses_entities_and_calendars(world):
    assert (world.first.added, world.first.disabled, world.first.skipped) == (COUNT, 0, 0)
    assert world.first.provisioned == COUNT
    accounts = world.accounts.list()
    assert len(accounts) >= COUNT
    entities = [a.entity for a in accounts if a.login.startswith("user")]
    assert entities.count("Paris") == entities.count("Lyon") == COUNT // 2
    alice = PEOPLE[3]  # has two alternative addresses
    account = world.accounts.get(alice.uid)
    assert account is not None
    assert (account.email, account.name, account.source) == (alice.mail, alice.name, "ldap")
    # Attendee resolution: any address of the account, in any case.
    for address in (alice.mail, *alice.alternates, alice.alternates[1].swapcase()):
        found = world.accounts.by_address(address)
        assert found is not None and found.login == alice.uid
    # Only the booking group's members may book.
    assert may_book(world.db, BOOKERS[0].uid) and not may_book(world.db, PEOPLE[-1].uid)
    # Nobody has logged in yet, and everyone has a principal and a calendar.
    provisioner = world.provisioner()
    assert provisioner.missing(p.uid for p in PEOPLE) == []
    props = Path(
        world.env["VISIO_DATA_DIR"],
        "collections",
        "collection-root",
        alice.uid,
        CALENDAR,
        ".Radicale.props",
    )
    assert '"tag": "VCALENDAR"' in props.read_text()


def test_runs_without_directory_changes_change_nothing(world):
    again = world.sync(full=True)
    assert (again.added, again.changed, again.disabled, again.provisioned) == (0, 0, 0, 0)
    assert again.unchanged >= COUNT
    incremental = world.sync(full=False)
    assert not incremental.full
    assert (incremental.added, incremental.changed, incremental.disabled) == (0, 0, 0)
    # slapadd stamped all 2,500 entries in the same second: entryCSN keeps the
    # incremental run from reading them all again.
    assert incremental.read <= 1


def test_add_modify_delete_between_two_runs(world):
    newcomer = S.Person("newcomer", "New", "Comer", "Paris", PASSWORD, ("nc@example.org",))
    mover, leaver = PEOPLE[12], PEOPLE[11]  # the mover has alternative addresses
    world.slapd.add_person(newcomer)
    world.slapd.modify(
        mover.dn,
        {
            "displayName": ["Renamed Person"],
            "ou": ["Marseille"],
            "mailAlternateAddress": ["renamed@example.org"],
        },
    )
    world.slapd.delete(leaver.dn)

    incremental = world.sync(full=False)
    assert (incremental.added, incremental.changed, incremental.disabled) == (1, 1, 0)
    assert incremental.read <= 3  # only what changed
    assert incremental.provisioned == 1 and world.provisioner().missing(["newcomer"]) == []
    assert world.accounts.by_address("NC@example.org").login == "newcomer"
    moved = world.accounts.get(mover.uid)
    assert (moved.name, moved.entity) == ("Renamed Person", "Marseille")
    assert world.accounts.by_address("renamed@example.org").login == mover.uid
    assert world.accounts.by_address(mover.alternates[0]) is None  # address removed
    # A deletion leaves no trace an incremental search could see…
    assert not world.accounts.get(leaver.uid).disabled

    full = world.sync(full=True)
    # …the full pass notices it: disabled, data kept, still resolvable as disabled.
    assert (full.added, full.changed, full.disabled) == (0, 0, 1)
    gone = world.accounts.get(leaver.uid)
    assert gone is not None and gone.disabled
    assert world.accounts.by_address(leaver.mail).disabled
    listed = world.visio("users", "list", "--disabled")
    assert listed.returncode == 0
    assert any(line.split("\t")[0] == leaver.uid for line in listed.stdout.splitlines())


def test_first_login_before_the_first_sync_still_gets_a_calendar(world):
    early = S.Person("early", "Early", "Bird", "Lyon", PASSWORD)
    world.slapd.add_person(early)
    storage = world.provisioner().storage
    with storage.acquire_lock("w", "early"):
        storage.create_collection("/early/")  # what Radicale does at a first login
    report = world.sync(full=False)
    assert report.added == 1 and report.provisioned == 1
    calendars = [
        c.path
        for c in storage.discover("/early/", depth="1")
        if getattr(c, "tag", None) == "VCALENDAR"
    ]
    assert calendars == [f"early/{CALENDAR}"]


def test_person_disabled_in_the_directory_is_disabled_by_the_next_incremental_run(world):
    person = PEOPLE[20]
    world.slapd.modify(person.dn, {"employeeType": ["disabled"]})  # now outside the filter
    report = world.sync(full=False)
    assert report.disabled == 1 and world.accounts.get(person.uid).disabled
    world.slapd.modify(person.dn, {"employeeType": []})  # back
    report = world.sync(full=False)
    assert report.changed == 1 and not world.accounts.get(person.uid).disabled


def test_an_administrators_disable_survives_syncs(world):
    person = PEOPLE[30]
    world.accounts.set_disabled(person.uid)
    world.sync(full=True)
    world.slapd.modify(person.dn, {"displayName": ["Touched"]})
    world.sync(full=False)
    account = world.accounts.get(person.uid)
    assert account.disabled and account.name == "Touched"


def test_booking_group_changes_follow(world):
    joining, leaving = PEOPLE[100], BOOKERS[1]
    world.slapd.set_bookers([p for p in BOOKERS if p is not leaving] + [joining])
    world.sync(full=False)
    assert may_book(world.db, joining.uid) and not may_book(world.db, leaving.uid)


def test_local_account_with_a_directory_login_becomes_a_directory_account(world):
    world.accounts.add("local1", "local1@example.org", "Local One", "local-password")
    world.slapd.add_person(S.Person("local1", "Local", "One", "Lyon", PASSWORD))
    world.sync(full=False)
    account = world.accounts.get("local1")
    assert account.source == "ldap" and account.entity == "Lyon"


def test_directory_stopped_mid_run_disables_nobody(world):
    enabled_before = {a.login for a in world.accounts.list(disabled=False)}
    mark_before = SyncStore(world.db).get("mark")

    def stop_after_first_page(read: int) -> None:
        world.slapd.stop()

    try:
        with pytest.raises(DirectoryUnavailable):
            world.sync(full=True, progress=stop_after_first_page)
        # The last synced accounts keep working for scheduling.
        assert {a.login for a in world.accounts.list(disabled=False)} == enabled_before
        assert world.accounts.by_address(PEOPLE[3].alternates[0]).login == PEOPLE[3].uid
        assert SyncStore(world.db).get("mark") == mark_before
        # The command says so, and fails.
        cli = world.visio("ldap-sync")
        assert cli.returncode == 1
        assert "no account was disabled" in cli.stderr and "Traceback" not in cli.stderr
    finally:
        world.slapd.start()
    cli = world.visio("ldap-sync")
    assert cli.returncode == 0, cli.stderr
    assert "full sync: 0 added, 0 changed, 0 disabled" in cli.stdout
    assert S.READER_PASSWORD not in cli.stdout + cli.stderr


def _lines(stream) -> queue.Queue[str | None]:
    """The lines of a child's pipe as they come (None at its end)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        for line in stream:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    return lines


def test_ldap_sync_waits_for_the_running_sync_then_runs_its_own(world):
    """The server's sync (the same code and lock as `visio serve`'s) is held at its
    first page by the test, so the command meets it running, whatever the timing."""
    settings, sections = load_settings(world.env)
    at_first_page, go_on = threading.Event(), threading.Event()
    done: list[SyncReport | None] = []

    def hold_at_first_page(read: int) -> None:
        if not at_first_page.is_set():
            at_first_page.set()
            go_on.wait(300)

    def server_sync() -> None:
        db = Database(settings.database)
        try:
            done.append(sync_once(settings, sections, db, full=True, progress=hold_at_first_page))
        finally:
            db.close()

    server = threading.Thread(target=server_sync)
    server.start()
    cli = None
    try:
        assert at_first_page.wait(120), "the server's sync never read its first page"
        cli = world.start_visio("ldap-sync")
        errors = _lines(cli.stderr)
        seen: list[str] = []
        while not any("waiting for it to finish" in line for line in seen):
            line = errors.get(timeout=120)
            assert line is not None, f"exited {cli.wait()} without waiting: {seen}"
            seen.append(line)
        # It says what it waits for: the other sync and how far it has got (one page).
        waiting = seen[-1]
        assert re.search(rf"visio serve, pid {os.getpid()}, 500 entries read", waiting), waiting
        assert cli.poll() is None  # the lock is still held: it cannot have finished
        go_on.set()
        server.join(300)
        assert done and done[0] is not None and done[0].read >= COUNT
        rest = []
        while (line := errors.get(timeout=120)) is not None:  # stderr is the pump's alone
            rest.append(line)
        out = cli.stdout.read()
        assert cli.wait(timeout=120) == 0, seen + rest
    finally:
        go_on.set()
        server.join(300)
        if cli is not None and cli.poll() is None:
            cli.kill()
            cli.wait()
    assert any("the other sync has finished" in line for line in rest), rest
    # Its own full pass ran after the other one: nothing was left for it to change.
    assert "full sync: 0 added, 0 changed, 0 disabled" in out


def test_ldap_sync_no_wait_and_max_wait_give_up_while_another_runs(world):
    settings, _ = load_settings(world.env)
    with held(settings.data_dir, "visio serve") as lock:
        assert lock is not None
        lock.note(1500)
        refused = world.visio("ldap-sync", "--no-wait")
        assert refused.returncode == 1
        assert "another sync is running; try again later" in refused.stderr
        assert "full sync" not in refused.stdout
        timed_out = world.visio("ldap-sync", "--max-wait", "1")
        assert timed_out.returncode == 1
        assert "another sync is still running after 1 s" in timed_out.stderr
        assert "1500 entries read" in timed_out.stderr
        assert "full sync" not in timed_out.stdout
    # Once it has ended, the same command runs.
    cli = world.visio("ldap-sync", "--no-wait")
    assert cli.returncode == 0, cli.stderr
    assert "full sync:" in cli.stdout
