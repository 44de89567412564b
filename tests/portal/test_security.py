"""Issue 17, findings 5, 6 and 8: the attacks of the security review, refused on the real stack.

Plain HTTP (requests) as an attacker would send it: the reset flood and what
its answers tell, the cookie replayed after signing out, sessions ended by a
reset or a disabled account, a traversal href, and the headers of every page.
"""

from __future__ import annotations

import html
import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from playwright.sync_api import BrowserContext

from conference_backend.portal import signins
from tests.browser.pages import wait_playing, wait_state
from tests.e2e.conftest import PASSWORD
from tests.invitations.mail import Mail, Sink
from tests.portal.conftest import person, sign_in
from tests.support.database import open_db
from tests.support.stack import Stack, wait_for
from visio_core import tokens
from visio_core.accounts import Accounts, DirectoryRecord

TIMEOUT = 60


@dataclass(frozen=True)
class Account:
    login: str

    @property
    def email(self) -> str:
        return f"{self.login}@example.org"


def account(stack: Stack, login: str = "") -> Account:
    login = login or "s" + uuid.uuid4().hex[:8]
    stack.add_user(login, PASSWORD, email=f"{login}@example.org", name=login.title())
    return Account(login)


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)


def signed_in(stack: Stack, who: Account, password: str = PASSWORD) -> requests.Session:
    """A browser's session of `who`, signed in through the portal's form."""
    web = requests.Session()
    csrf = csrf_of(web.get(stack.web_url + "login", timeout=TIMEOUT).text)
    r = web.post(
        stack.web_url + "login",
        data={"csrf": csrf, "login": who.login, "password": password, "tz": "Europe/Paris"},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert r.status_code == 303 and r.headers["Location"] == "/", r.text
    return web


def recordings_page(stack: Stack, cookies: dict[str, str]) -> requests.Response:
    """What a signed-in page answers to this cookie (a browser, or an attacker replaying it)."""
    return requests.get(
        stack.web_url + "recordings", cookies=cookies, allow_redirects=False, timeout=TIMEOUT
    )


def is_signed_out(r: requests.Response) -> bool:
    return r.status_code == 303 and r.headers["Location"] == "/login"


def ask_reset(stack: Stack, web: requests.Session, login: str, csrf: str) -> requests.Response:
    return web.post(stack.web_url + "reset", data={"csrf": csrf, "login": login}, timeout=TIMEOUT)


def reset_rows(stack: Stack, login: str) -> list[tuple[str, int]]:
    """(state, attempts) of the reset requests the portal queued for `login`."""
    with stack.db() as db, db.reading() as conn:
        rows = conn.execute(
            "SELECT state, attempts FROM reset_requests WHERE login = ? ORDER BY id", (login,)
        ).fetchall()
    return [(str(s), int(a)) for s, a in rows]


def mails_to(sink: Sink, address: str) -> list[Mail]:
    return [m for m in sink.all() if m.to == address]


def reset_link(sink: Sink, address: str) -> str:
    mail = wait_for(lambda: mails_to(sink, address), timeout=60, what="the reset mail")[0]
    found = re.search(r"http://\S+/reset/\S+", mail.text)
    assert found is not None, mail.text
    return found.group(0)


# finding 5: password reset -------------------------------------------------------------
def test_a_reset_flood_sends_one_mail_and_every_answer_is_the_same(
    stack: Stack, sink: Sink
) -> None:
    victim = account(stack)
    web = requests.Session()
    csrf = csrf_of(web.get(stack.web_url + "reset", timeout=TIMEOUT).text)
    cookies = web.cookies.get_dict()

    def one(_: int) -> requests.Response:
        return requests.post(
            stack.web_url + "reset",
            data={"csrf": csrf, "login": victim.login},
            cookies=cookies,
            timeout=TIMEOUT,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(one, range(30)))
    assert {r.status_code for r in answers} == {200}
    assert len({r.text for r in answers}) == 1  # the same page, mail queued or not
    assert "un lien de réinitialisation vient d'être envoyé" in html.unescape(answers[0].text)
    wait_for(lambda: mails_to(sink, victim.email), timeout=60, what="the reset mail")
    # One request queued out of 30, and it is the one mail: nothing else can be sent.
    wait_for(lambda: reset_rows(stack, victim.login) == [("sent", 1)], what="the row sent")
    assert len(mails_to(sink, victim.email)) == 1


@pytest.fixture(scope="module")
def stalled(
    namespace: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, Sink]]:
    """A stack of its own whose SMTP server can be made to stall mid-conversation."""
    sink = Sink().start()
    s = Stack(tmp_path_factory.mktemp("reset-stall"), extra_env=sink.env)
    try:
        s.start()
        yield s, sink
    finally:
        s.stop()
        sink.stop()


def test_asking_does_the_same_work_for_every_login_and_never_waits_for_smtp(
    stalled: tuple[Stack, Sink],
) -> None:
    stack, sink = stalled
    known = account(stack)
    unknown = "nobody" + uuid.uuid4().hex[:6]
    web = requests.Session()
    csrf = csrf_of(web.get(stack.web_url + "reset", timeout=TIMEOUT).text)
    sink.hold_at("RCPT", 1)  # the SMTP server stalls on the next message until released
    try:
        for_known = ask_reset(stack, web, known.login, csrf)
        # The mail of that very request is stuck inside the SMTP conversation...
        wait_for(sink.held.is_set, timeout=60, what="the mail worker talking to SMTP")
        # ...while the request itself was answered, and the next one is too.
        for_unknown = ask_reset(stack, web, unknown, csrf)
        assert for_known.status_code == for_unknown.status_code == 200
        assert for_known.text == for_unknown.text  # byte for byte: nothing tells them apart
        assert mails_to(sink, known.email) == []
        # Both requests wrote their row; only the worker tells a mail from no mail.
        assert len(reset_rows(stack, known.login)) == len(reset_rows(stack, unknown)) == 1
    finally:
        sink.unhold()
    wait_for(lambda: mails_to(sink, known.email), timeout=60, what="the reset mail, released")
    wait_for(lambda: reset_rows(stack, known.login) == [("sent", 1)], what="the row sent")
    wait_for(lambda: reset_rows(stack, unknown) == [("skipped", 1)], what="no mail for nobody")


def test_a_reset_link_works_for_a_dotted_login_and_ends_its_other_sessions(
    stack: Stack, sink: Sink
) -> None:
    jean = account(stack, "jean.dupont." + uuid.uuid4().hex[:6])
    other_browser = signed_in(stack, jean)
    assert recordings_page(stack, other_browser.cookies.get_dict()).status_code == 200
    web = requests.Session()
    csrf = csrf_of(web.get(stack.web_url + "reset", timeout=TIMEOUT).text)
    assert ask_reset(stack, web, jean.login, csrf).ok
    link = reset_link(sink, jean.email)
    page = web.get(link, timeout=TIMEOUT)
    assert page.status_code == 200 and "Nouveau mot de passe" in page.text, page.text
    new_password = "un tout nouveau secret"
    done = web.post(
        link,
        data={"csrf": csrf_of(page.text), "password": new_password, "confirm": new_password},
        timeout=TIMEOUT,
    )
    assert "Votre mot de passe a été changé" in done.text, done.text
    # The session opened before the reset is over; the new password opens a new one.
    assert is_signed_out(recordings_page(stack, other_browser.cookies.get_dict()))
    fresh = signed_in(stack, jean, new_password)
    assert recordings_page(stack, fresh.cookies.get_dict()).status_code == 200
    # The link worked once; a link of the old format (split at the first dot) fails cleanly.
    again = web.get(link, timeout=TIMEOUT)
    assert again.status_code == 200 and "n'est pas ou plus valable" in html.unescape(again.text)
    old_format = f"{stack.web_url}reset/{jean.login}.9999999999.{'A' * 27}"
    old = web.get(old_format, timeout=TIMEOUT)
    assert old.status_code == 200 and "n'est pas ou plus valable" in html.unescape(old.text)


# finding 6: sessions end server-side ------------------------------------------------------
def test_a_cookie_replayed_after_signing_out_opens_nothing(stack: Stack) -> None:
    mallory = account(stack)
    web = signed_in(stack, mallory)
    stolen = web.cookies.get_dict()
    assert recordings_page(stack, stolen).status_code == 200
    csrf = csrf_of(web.get(stack.web_url + "recordings", timeout=TIMEOUT).text)
    out = web.post(
        stack.web_url + "logout", data={"csrf": csrf}, allow_redirects=False, timeout=TIMEOUT
    )
    assert out.status_code == 303
    assert is_signed_out(recordings_page(stack, stolen))
    assert is_signed_out(recordings_page(stack, web.cookies.get_dict()))


def test_disabling_an_account_ends_its_sessions_for_good(stack: Stack) -> None:
    leaver = account(stack)
    one, two = signed_in(stack, leaver), signed_in(stack, leaver)
    for browser in (one, two):
        assert recordings_page(stack, browser.cookies.get_dict()).status_code == 200
    stack.visio("users", "disable", leaver.login)
    for browser in (one, two):
        assert is_signed_out(recordings_page(stack, browser.cookies.get_dict()))
    # Enabled again, the account signs in anew: the old sessions stay ended.
    stack.visio("users", "enable", leaver.login)
    assert is_signed_out(recordings_page(stack, one.cookies.get_dict()))
    assert recordings_page(stack, signed_in(stack, leaver).cookies.get_dict()).status_code == 200


def test_the_ldap_sync_disabling_a_leaver_ends_their_sessions(tmp_path: Path) -> None:
    """The LDAP sync writes through Accounts.set_disabled_many: the database ends the sessions."""
    db = open_db(tmp_path / "visio.sqlite3")
    try:
        accounts = Accounts(db)
        leaver = DirectoryRecord("leaver", "leaver@example.org", "Léa", "", ())
        accounts.upsert_from_directory([leaver])
        now = time.time()
        session_id = signins.start(db, "leaver", now, 3600)
        assert signins.alive(db, session_id, "leaver", now, 3600)
        assert accounts.set_disabled_many(["leaver"]) == 1
        assert not signins.alive(db, session_id, "leaver", now, 3600)
        accounts.set_disabled_many(["leaver"], disabled=False)
        assert not signins.alive(db, session_id, "leaver", now, 3600)
    finally:
        db.close()


# finding 8: hrefs and headers ----------------------------------------------------------
def instant_meeting(stack: Stack, web: requests.Session) -> str:
    """Start an instant meeting; its event's href."""
    csrf = csrf_of(web.get(stack.web_url, timeout=TIMEOUT).text)
    r = web.post(
        stack.web_url + "instant", data={"csrf": csrf}, allow_redirects=False, timeout=TIMEOUT
    )
    assert r.status_code == 303, r.text
    return parse_qs(urlsplit(r.headers["Location"]).query)["href"][0]


@pytest.fixture(scope="module")
def alices_meeting(stack: Stack) -> tuple[Account, requests.Session, str]:
    alice = account(stack)
    web = signed_in(stack, alice)
    return alice, web, instant_meeting(stack, web)


def test_a_traversal_href_answers_404(
    stack: Stack, alices_meeting: tuple[Account, requests.Session, str]
) -> None:
    alice, alices_browser, href = alices_meeting
    rest = href.split("/", 2)[2]  # what follows /alice/
    mine = alices_browser.get(stack.web_url + "meeting", params={"href": href}, timeout=TIMEOUT)
    assert mine.status_code == 200
    mallory = account(stack)
    web = signed_in(stack, mallory)
    forged = [
        f"/{mallory.login}/%2e%2e/{alice.login}/{rest}",
        f"/{mallory.login}/%2E%2E/{alice.login}/{rest}",
        f"/{mallory.login}/.%2e/{alice.login}/{rest}",
        f"/{mallory.login}/../{alice.login}/{rest}",
        f"/{mallory.login}/x/..%2f..%2f{alice.login}/{rest}",
    ]
    for path in ("meeting", "instant"):
        for value in forged:
            r = web.get(stack.web_url + path, params={"href": value}, timeout=TIMEOUT)
            assert r.status_code == 404, (path, value, r.status_code)
            assert "Traceback" not in r.text and alice.login not in r.text


def policy(r: requests.Response) -> dict[str, str]:
    header = r.headers.get("Content-Security-Policy", "")
    return {d.split()[0]: d.strip() for d in header.split(";") if d.strip()}


def test_every_page_sends_its_security_headers(
    stack: Stack, alices_meeting: tuple[Account, requests.Session, str]
) -> None:
    _, web, href = alices_meeting
    instant = web.get(stack.web_url + "instant", params={"href": href}, timeout=TIMEOUT).text
    join = re.search(r"/j/[A-Za-z0-9_-]+", instant)
    assert join is not None
    key = (stack.data_dir / "secret.key").read_bytes()
    rsvp = tokens.rsvp_token(key, "someone", "some-uid", "guest@example.org")
    pages = {
        "caldav": 200,
        "login": 200,
        "reset": 200,
        join.group(0)[1:]: 200,
        "j/" + "A" * 27: 404,
        f"rsvp/{rsvp}?answer=DECLINED": 200,
        "rsvp/not-a-token": 404,
        "no/such/page": 404,
    }
    for path, status in pages.items():
        r = requests.get(stack.web_url + path, timeout=TIMEOUT)
        assert r.status_code == status, (path, r.status_code)
        assert r.headers["Content-Type"].startswith("text/html")
        csp = policy(r)
        assert csp.get("frame-ancestors") == "frame-ancestors 'none'", (path, csp)
        assert csp.get("script-src") == "script-src 'self'", (path, csp)
        assert csp.get("object-src") == "object-src 'none'", (path, csp)
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"
    room = policy(requests.get(stack.web_url + join.group(0)[1:], timeout=TIMEOUT))
    assert "mediastream:" in room["media-src"] and "ws://" in room["connect-src"]
    assert "media-src" not in policy(requests.get(stack.web_url + "caldav", timeout=TIMEOUT))


VIOLATIONS = """
window.__csp = [];
document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
"""


def test_the_portal_and_the_room_work_under_their_policies(
    stack: Stack, context: BrowserContext
) -> None:
    """Chromium enforces each page's CSP: signing in, then an instant meeting with the camera."""
    console: list[str] = []
    context.add_init_script(VIOLATIONS)
    page = context.new_page()
    page.on("console", lambda m: console.append(m.text))
    sign_in(page, stack, person(stack, "Zoé Marchand"))
    assert page.evaluate("window.__csp") == []
    page.get_by_role("button", name="Réunion instantanée").click()
    wait_state(page, "joined")  # scripts, then the WebSocket to our host
    wait_playing(page, 'video[data-role="self"]')  # the camera's stream plays
    assert "/j/" in page.url
    assert page.evaluate("window.__csp") == []
    assert not [m for m in console if "Content Security Policy" in m], console
