"""The whole stack (`visio serve`) in LDAP mode, over StartTLS, as CalDAV clients see it.

The service account's password is given as a file; `visio serve` syncs the
directory on start and then every second (incremental runs).
"""

from __future__ import annotations

import html
import os
import re
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.ldap.conftest import PASSWORD, ldap_env
from tests.support import ics
from tests.support import slapd as S
from tests.support.stack import Stack, wait_for
from tests.support.tls import make_tls_files
from visio_core.accounts import Accounts
from visio_core.db import Database

COUNT = 300  # paging is covered by the 2,500-entry modules; this one is about HTTP
PEOPLE = S.generate_people(COUNT, PASSWORD)
BOOKERS = PEOPLE[:2]  # the booking group; everyone else may join meetings but not book


@pytest.fixture(scope="module")
def slapd(tmp_path_factory) -> Iterator[S.Slapd]:
    root = tmp_path_factory.mktemp("slapd")
    yield from S.running_slapd(root, S.base_ldif(PEOPLE, BOOKERS), tls=make_tls_files(root / "tls"))


@pytest.fixture(scope="module")
def stack(slapd, tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("stack")
    secret = root / "bind-password"
    secret.write_text(S.READER_PASSWORD + "\n")
    secret.chmod(0o600)
    env = ldap_env(
        slapd,
        root / "var",
        VISIO_LDAP_BIND_PASSWORD="",
        VISIO_LDAP_BIND_PASSWORD_FILE=str(secret),
        VISIO_LDAP_SYNC_INTERVAL="1",
    )
    s = Stack(root / "var", extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def accounts(stack) -> Iterator[Accounts]:
    db = Database(stack.database)
    accounts = Accounts(db)
    # `visio serve` runs its first (full) sync at start.
    wait_for(lambda: accounts.get(PEOPLE[-1].uid), timeout=60, what="the first sync")
    yield accounts
    db.close()


def propfind(stack: Stack, login: str, password: str, path: str | None = None, depth: str = "0"):
    return requests.request(
        "PROPFIND",
        stack.caldav_url + (path if path is not None else f"{login.lower()}/"),
        auth=(login, password),
        headers={"Depth": depth},
        timeout=30,
    )


def test_login_with_directory_password_and_only_with_it(stack, accounts):
    person = PEOPLE[1]
    assert propfind(stack, person.uid, PASSWORD).status_code == 207
    # The login is the directory's, in any case; the principal is the canonical one.
    assert propfind(stack, person.uid.upper(), PASSWORD).status_code == 207
    refused = [
        (person.uid, PASSWORD + "x"),
        (person.uid, ""),
        ("nobody", PASSWORD),
        ("*)(uid=*", PASSWORD),
        (f"{person.uid})(objectClass=*", PASSWORD),
    ]
    # Failed logins are slowed down by the server; ask them all at once.
    with ThreadPoolExecutor(len(refused)) as pool:
        answers = list(
            pool.map(lambda c: propfind(stack, c[0], c[1], path="").status_code, refused)
        )
    assert answers == [401] * len(refused)


def test_calendar_exists_and_receives_invitations_before_first_login(stack, accounts):
    organizer, attendee = PEOPLE[0], PEOPLE[3]  # the attendee never logged in
    props = stack.data_dir / "collections/collection-root" / attendee.uid / "calendar"
    assert (props / ".Radicale.props").is_file()
    uid = str(uuid.uuid4())
    alias = attendee.alternates[0].upper()  # invited under an alternative address
    body = ics.event(
        uid=uid,
        extra=(
            f"ORGANIZER;CN={organizer.name}:mailto:{organizer.mail}\n"
            f"ATTENDEE;CN={attendee.name};RSVP=TRUE:mailto:{alias}"
        ),
    )
    put = requests.put(
        f"{stack.caldav_url}{organizer.uid}/calendar/{uid}.ics",
        data=body.encode(),
        auth=(organizer.uid, PASSWORD),
        headers={"Content-Type": "text/calendar; charset=utf-8"},
        timeout=60,
    )
    assert put.status_code in (201, 204), put.text
    # First login: one calendar (the provisioned one), holding the invitation.
    listing = propfind(stack, attendee.uid, PASSWORD, depth="1")
    assert listing.status_code == 207
    assert listing.text.count("<C:calendar />") + listing.text.count("<C:calendar/>") == 1
    copy = wait_for(
        lambda: (
            (
                r := requests.get(
                    f"{stack.caldav_url}{attendee.uid}/calendar/",
                    auth=(attendee.uid, PASSWORD),
                    timeout=30,
                )
            ).ok
            and uid in r.text
            and r
        ),
        what="the delivered invitation",
    )
    assert "PARTSTAT=NEEDS-ACTION" in copy.text.replace("\r\n ", "")


def test_entry_deleted_from_the_directory_cannot_log_in_at_once(stack, slapd, accounts):
    person = PEOPLE[60]
    slapd.delete(person.dn)
    # Refused by the directory itself, whatever the accounts store still says.
    assert propfind(stack, person.uid, PASSWORD).status_code == 401


def test_person_disabled_in_the_directory_loses_access_and_is_listed(stack, slapd, accounts):
    person = PEOPLE[70]
    assert propfind(stack, person.uid, PASSWORD).status_code == 207
    slapd.modify(person.dn, {"employeeType": ["disabled"]})
    wait_for(lambda: accounts.get(person.uid).disabled, timeout=30, what="the next sync")
    assert propfind(stack, person.uid, PASSWORD).status_code == 401
    listed = stack.visio("users", "list", "--disabled").stdout.splitlines()
    assert [line.split("\t")[-1] for line in listed if line.startswith(person.uid + "\t")] == [
        "disabled"
    ]


def test_directory_down_answers_503_then_recovers(stack, slapd, accounts):
    person = PEOPLE[80]  # not logged in before: nothing cached
    slapd.stop()
    try:
        down = propfind(stack, person.uid, PASSWORD)
        assert down.status_code == 503
        assert down.headers.get("Retry-After")
        # The server itself is fine, and says why in its log.
        assert requests.request("OPTIONS", stack.caldav_url, timeout=10).status_code == 200
        assert "LDAP directory unavailable" in stack.log_text()
        # Scheduling keeps resolving the last synced accounts.
        assert accounts.by_address(PEOPLE[3].alternates[1]).login == PEOPLE[3].uid
    finally:
        slapd.start()
    assert propfind(stack, person.uid, PASSWORD).status_code == 207


def test_only_the_booking_group_gets_rooms_and_the_portals_booking(stack, accounts):
    booker, other = BOOKERS[1], PEOPLE[5]
    rooms = {}
    for who in (booker, other):
        uid = str(uuid.uuid4())
        url = f"{stack.caldav_url}{who.uid}/calendar/{uid}.ics"
        r = requests.put(
            url,
            data=ics.event(uid=uid).encode(),
            auth=(who.uid, PASSWORD),
            headers={"Content-Type": "text/calendar; charset=utf-8"},
            timeout=60,
        )
        assert r.status_code == 201, r.text
        stored = requests.get(url, auth=(who.uid, PASSWORD), timeout=30).text
        rooms[who.uid] = "X-VISIO-ROOM" in stored and "/j/" in stored
        assert "BEGIN:VEVENT" in stored  # the event itself is always kept
    assert rooms == {booker.uid: True, other.uid: False}

    # The portal says so plainly instead of offering what would not work.
    web = requests.Session()
    page = web.get(stack.web_url + "login", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    r = web.post(
        stack.web_url + "login",
        data={"csrf": csrf.group(1), "login": other.uid, "password": PASSWORD},
        timeout=60,
    )
    assert r.ok
    refusal = "Votre compte ne permet pas de planifier de réunions"
    assert refusal in html.unescape(r.text) and 'action="/instant"' not in r.text
    assert web.get(stack.web_url + "plan", timeout=30).status_code == 403
    signed_in = re.search(r'name="csrf" value="([^"]+)"', r.text)
    assert signed_in is not None
    r = web.post(stack.web_url + "instant", data={"csrf": signed_in.group(1)}, timeout=30)
    assert r.status_code == 403 and refusal in html.unescape(r.text)


def _stack_processes(stack: Stack) -> list[Path]:
    assert stack.proc is not None
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == stack.proc.pid:
                    found.append(entry)
            except OSError:
                continue
    return found


def test_bind_password_is_never_shown(stack, accounts):
    processes = _stack_processes(stack)
    assert len(processes) >= 2  # serve and its CalDAV child
    secret = S.READER_PASSWORD.encode()
    for proc in processes:
        assert secret not in (proc / "cmdline").read_bytes()
        assert secret not in (proc / "environ").read_bytes()
    assert S.READER_PASSWORD not in stack.log_text()
