"""Local accounts from the `visio users` command, login checks and owner-only rights."""

from __future__ import annotations

import uuid

import requests
from caldav.davclient import DAVClient

from tests.e2e.conftest import PASSWORD, DavUser, new_user
from tests.support import ics
from tests.support.stack import Stack

REFUSED = (403, 404)


def fresh_login(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def propfind(session: requests.Session, url: str) -> requests.Response:
    return session.request("PROPFIND", url, headers={"Depth": "1"}, timeout=30)


def can_log_in(stack: Stack, login: str, password: str) -> int:
    r = requests.request(
        "PROPFIND",
        f"{stack.caldav_url}{login}/",
        auth=(login, password),
        headers={"Depth": "0"},
        timeout=30,
    )
    return r.status_code


def test_users_add_then_list_shows_one_line_per_account(stack: Stack) -> None:
    with_entity, without = fresh_login("marie"), fresh_login("paul")
    out = stack.visio(
        "users",
        "add",
        with_entity,
        "--email",
        f"{with_entity}@example.org",
        "--name",
        "Marie Curie-Dupont",
        "--entity",
        "DSI / Réseaux",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert with_entity in out.stdout
    stack.visio(
        "users",
        "add",
        without,
        "--email",
        f"{without}@example.org",
        "--name",
        "Paul Émile",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )

    lines = stack.visio("users", "list").stdout.splitlines()
    assert (
        f"{with_entity}\t{with_entity}@example.org\tMarie Curie-Dupont\tDSI / Réseaux\tactive"
        in lines
    )
    assert f"{without}\t{without}@example.org\tPaul Émile\t-\tactive" in lines
    assert can_log_in(stack, with_entity, PASSWORD) == 207


def test_duplicate_login_is_refused_with_a_readable_message(stack: Stack) -> None:
    login = fresh_login("dup")
    stack.add_user(login, PASSWORD)
    again = stack.visio(
        "users",
        "add",
        login,
        "--email",
        f"other-{login}@example.org",
        "--name",
        "Someone Else",
        "--password-stdin",
        stdin="another password\n",
        check=False,
    )
    assert again.returncode != 0
    assert login in again.stderr and "already exists" in again.stderr
    assert "Traceback" not in again.stderr
    # The first account is untouched: its password still opens it, the new one does not.
    assert can_log_in(stack, login, PASSWORD) == 207
    assert can_log_in(stack, login, "another password") == 401
    listed = [
        line
        for line in stack.visio("users", "list").stdout.splitlines()
        if line.split("\t")[0] == login
    ]
    assert listed == [f"{login}\t{login}@example.org\t{login.title()}\t-\tactive"]


def test_disabled_account_is_refused_at_once(stack: Stack, user: DavUser) -> None:
    assert user.put("mine.ics", ics.event(uid="disabled-1")).status_code == 201
    assert user.get("mine.ics").status_code == 200  # a login the server has just verified

    done = stack.visio("users", "disable", user.login)
    assert done.returncode == 0
    assert user.get("mine.ics").status_code == 401
    assert propfind(user.session, user.calendar).status_code == 401

    disabled = stack.visio("users", "list", "--disabled").stdout.splitlines()
    assert any(
        line.split("\t")[0] == user.login and line.endswith("\tdisabled") for line in disabled
    ), disabled
    assert all(line.endswith("\tdisabled") for line in disabled)
    everyone = stack.visio("users", "list").stdout.splitlines()
    assert f"{user.login}\t{user.login}@example.org\t{user.login.title()}\t-\tdisabled" in everyone

    stack.visio("users", "enable", user.login)
    assert user.get("mine.ics").status_code == 200


def test_wrong_password_and_unknown_login_get_401(stack: Stack, user: DavUser) -> None:
    wrong = requests.get(user.calendar, auth=(user.login, PASSWORD + "!"), timeout=30)
    assert wrong.status_code == 401
    unknown = requests.get(user.calendar, auth=(fresh_login("ghost"), PASSWORD), timeout=30)
    assert unknown.status_code == 401
    assert user.get("").status_code in (200, 207)  # the right password still works


def test_a_user_cannot_read_or_write_another_users_calendar(stack: Stack, user: DavUser) -> None:
    alice, bob = user, new_user(stack)
    created = alice.put("secret.ics", ics.event(uid="secret-1", summary="Budget RH"))
    assert created.status_code == 201
    original = alice.get("secret.ics").text
    link = ics.join_link(original)
    theirs = alice.url("secret.ics")
    b = bob.session

    read = b.get(theirs, timeout=30)
    assert read.status_code in REFUSED and "Budget RH" not in read.text
    listing = propfind(b, alice.calendar)
    assert listing.status_code in REFUSED and "secret" not in listing.text

    body = ics.event(uid="intrus-1", summary="Intrus").encode()
    headers = {"Content-Type": "text/calendar; charset=utf-8"}
    assert (
        b.put(alice.url("intrus.ics"), data=body, headers=headers, timeout=30).status_code
        in REFUSED
    )
    assert alice.get("intrus.ics").status_code == 404
    overwrite = ics.event(uid="secret-1", summary="Écrasé", categories="Travail").encode()
    assert b.put(theirs, data=overwrite, headers=headers, timeout=30).status_code in REFUSED
    assert b.put(alice.calendar, data=body, headers=headers, timeout=30).status_code in REFUSED
    assert b.delete(theirs, timeout=30).status_code in REFUSED
    moved = b.request("MOVE", theirs, headers={"Destination": bob.url("volé.ics")}, timeout=30)
    assert moved.status_code in REFUSED
    assert (
        b.request("MKCALENDAR", f"{stack.caldav_url}{alice.login}/pirate/", timeout=30).status_code
        in REFUSED
    )

    assert alice.get("secret.ics").text == original
    assert propfind(alice.session, alice.calendar).text.count(".ics<") == 1
    assert bob.get("volé.ics").status_code == 404
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Budget RH" in page.text


def test_caldav_library_sees_the_join_link_after_refetch(stack: Stack) -> None:
    login = fresh_login("cal")
    stack.add_user(login, PASSWORD)
    uid = f"caldav-lib-{uuid.uuid4().hex[:6]}"
    client = DAVClient(url=stack.caldav_url, username=login, password=PASSWORD)
    principal = client.principal()
    cal = principal.make_calendar(name="Travail")
    cal.save_event(ics.event(uid=uid, summary="Revue de projet"))

    event = cal.event_by_uid(uid)
    event.load()
    data = event.data
    link = ics.join_link(data)
    assert link.startswith(stack.web_url + "j/")
    (ev,) = ics.vevents(data)
    assert str(ev["SUMMARY"]) == "Revue de projet"
    assert str(ev["LOCATION"]) == link
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and "Revue de projet" in page.text
