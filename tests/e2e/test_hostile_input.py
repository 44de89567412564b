"""Odd and hostile input against the real stack, as a client or a person would send it.

Malformed credentials are a failed login (401, the challenge, Radicale's delay, one
log line, no traceback); control characters and bodies that are not the text they
claim are refused with 400 and the reason on every write path (one event, a whole
calendar, the portal's form); a plain event comes back exactly as it was sent.
"""

from __future__ import annotations

import base64
import http.client
import re
import time
import uuid
import xml.etree.ElementTree as ET
from urllib.parse import urljoin

import pytest
import requests

from tests.e2e.conftest import DavUser, new_user
from tests.e2e.test_bad_input import room_count
from tests.support import ics
from tests.support.stack import Stack, wait_for

AUTH_DELAY = 1.0  # radicale.conf [auth] delay; Radicale waits 0.5 to 1.5 times it


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def raw_request(
    stack: Stack, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, http.client.HTTPResponse, bytes, float]:
    """One request with headers exactly as given (requests would re-encode them)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.caldav_port, timeout=60)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        for name, value in headers.items():
            conn.putheader(name, value)  # str values go out as ISO-8859-1, bytes as they are
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        began = time.monotonic()
        response = conn.getresponse()
        answer = response.read()
        return response.status, response, answer, time.monotonic() - began
    finally:
        conn.close()


@pytest.fixture(scope="module")
def someone(stack: Stack) -> DavUser:
    """One account for the tests that only read back what they wrote (accounts are slow to add)."""
    return new_user(stack)


def log_lines_with(stack: Stack, marker: str) -> list[str]:
    return [line for line in stack.log_text().splitlines() if marker in line]


def assert_no_server_error(stack: Stack) -> None:
    """Nothing the server answered so far was a crash (the stack is this module's own)."""
    log = stack.log_text()
    assert "Traceback" not in log
    assert "An exception occurred" not in log
    assert "500 Internal Server Error" not in log


# 3. malformed credentials --------------------------------------------------------------

MALFORMED_AUTHORIZATION = {
    "scheme-alone": "Basic",
    "scheme-and-space": "Basic ",
    "not-base64": "Basic !!!!",
    "no-colon": "Basic " + b64(b"alice"),
    "broken-padding": "Basic " + b64(b"alice:secret")[:-1],
    "not-ascii": "Basic \xe9t\xe9",
    "scheme-glued-to-broken-value": "Basicxyz",
}


@pytest.mark.parametrize(
    "authorization", MALFORMED_AUTHORIZATION.values(), ids=MALFORMED_AUTHORIZATION.keys()
)
def test_malformed_credentials_are_a_failed_login(
    stack: Stack, someone: DavUser, authorization: str
) -> None:
    marker = uuid.uuid4().hex
    status, response, answer, elapsed = raw_request(
        stack,
        "PROPFIND",
        f"/{someone.login}/{marker}/",
        {"Authorization": authorization, "Depth": "0"},
    )
    assert status == 401, answer
    assert (response.getheader("WWW-Authenticate") or "").startswith('Basic realm="')
    assert elapsed >= AUTH_DELAY * 0.5  # Radicale's wait after a failed login
    lines = wait_for(lambda: log_lines_with(stack, marker), what="the log line")
    assert len(lines) == 1 and "Failed login attempt" in lines[0], lines
    assert "malformed Authorization header" in lines[0]
    assert_no_server_error(stack)


def test_a_malformed_header_on_a_put_stores_nothing(stack: Stack, someone: DavUser) -> None:
    body = ics.event(uid="malformed-auth-put").encode()
    status, _, _, _ = raw_request(
        stack,
        "PUT",
        f"/{someone.login}/calendar/malformed-auth.ics",
        {"Authorization": "Basic " + b64(someone.login.encode()), "Content-Type": "text/calendar"},
        body,
    )
    assert status == 401
    assert someone.get("malformed-auth.ics").status_code == 404


def test_other_authorization_forms_answer_401_and_good_ones_still_work(
    stack: Stack, someone: DavUser
) -> None:
    path = f"/{someone.login}/"
    odd = {
        "empty": "",
        "other scheme": "Bearer abc.def.ghi",
        "lower-case scheme": "basic " + b64(f"{someone.login}:wrong".encode()),
        "latin-1 password": "Basic " + b64(someone.login.encode() + b":caf\xe9"),
        "control character in the login": "Basic " + b64(b"al\x00ice:secret"),
        "empty login and password": "Basic " + b64(b":"),
    }
    for what, authorization in odd.items():
        status, response, answer, _ = raw_request(
            stack, "PROPFIND", path, {"Authorization": authorization, "Depth": "0"}
        )
        assert status == 401, (what, answer)
        assert (response.getheader("WWW-Authenticate") or "").startswith("Basic realm=")
    good = "Basic " + b64(f"{someone.login}:{someone.password}".encode())
    status, _, _, _ = raw_request(stack, "PROPFIND", path, {"Authorization": good, "Depth": "0"})
    assert status == 207
    assert_no_server_error(stack)


def test_an_unknown_charset_is_refused_not_a_server_error(stack: Stack, someone: DavUser) -> None:
    r = someone.put(
        "charset.ics",
        ics.event(uid="charset-1"),
        **{"Content-Type": "text/calendar; charset=klingon"},
    )
    assert r.status_code == 400 and "klingon" in r.text
    assert someone.get("charset.ics").status_code == 404
    assert_no_server_error(stack)


def test_a_quoted_charset_is_understood(stack: Stack, someone: DavUser) -> None:
    body = ics.event(uid="quoted-charset-1", summary="Réunion café", categories=None)
    r = someone.put("quoted.ics", body, **{"Content-Type": 'text/calendar; charset="utf-8"'})
    assert r.status_code == 201, r.text
    assert someone.get("quoted.ics").text == body
    assert_no_server_error(stack)


# 4. control characters and undecodable bodies --------------------------------------------

CONTROL_CHARACTERS = {
    "nul": ("\x00", "U+0000"),
    "start-of-heading": ("\x01", "U+0001"),
    "bell": ("\x07", "U+0007"),
    "escape": ("\x1b", "U+001B"),
    "del": ("\x7f", "U+007F"),
    "carriage-return-alone": ("\r", "U+000D"),
}


@pytest.mark.parametrize("category", ["Visio", None], ids=["visio", "plain"])
@pytest.mark.parametrize(
    ("char", "code"), CONTROL_CHARACTERS.values(), ids=CONTROL_CHARACTERS.keys()
)
def test_control_character_in_summary_is_refused(
    stack: Stack, someone: DavUser, char: str, code: str, category: str | None
) -> None:
    rooms_before = room_count(stack)
    r = someone.put(
        "ctl.ics", ics.event(uid="ctl-1", summary=f"Point{char}budget", categories=category)
    )
    assert r.status_code == 400, r.text
    assert code in r.text and "SUMMARY" in r.text
    assert someone.get("ctl.ics").status_code == 404
    assert room_count(stack) == rooms_before
    assert_no_server_error(stack)


ANYWHERE = {
    "folded-description": "DESCRIPTION:Ordre du jour : budget\n  prévisionnel\x00 et questions",
    "parameter": 'X-VISIO-NOTE;X-LABEL="a\x00b":valeur',
    "x-property": "X-MOZ-LASTACK:2026\x0c1203",
    "attendee": "ATTENDEE;CN=Bob:mailto:b\x00b@example.org",
}


@pytest.mark.parametrize("extra", ANYWHERE.values(), ids=ANYWHERE.keys())
def test_control_character_in_any_property_is_refused(someone: DavUser, extra: str) -> None:
    r = someone.put("ctl-any.ics", ics.event(uid="ctl-any-1", categories=None, extra=extra))
    assert r.status_code == 400, r.text
    assert "U+00" in r.text
    assert someone.get("ctl-any.ics").status_code == 404


def test_tab_and_escaped_line_breaks_are_text_and_kept(someone: DavUser) -> None:
    body = ics.event(
        uid="tab-1", summary="Point\tbudget", categories=None, extra="DESCRIPTION:ligne 1\\nligne 2"
    )
    r = someone.put("tab.ics", body)
    assert r.status_code == 201, r.text
    (ev,) = ics.vevents(someone.get("tab.ics").text)
    assert str(ev["SUMMARY"]) == "Point\tbudget"
    assert str(ev["DESCRIPTION"]) == "ligne 1\nligne 2"


def test_whole_calendar_import_with_a_control_character_changes_nothing(
    stack: Stack, user: DavUser
) -> None:
    assert user.put("kept.ics", ics.event(uid="kept-1", summary="Déjà là")).status_code == 201
    rooms_before = room_count(stack)
    good = ics.event(uid="import-good-1", summary="Bonne")
    bad = ics.event(uid="import-bad-1", summary="Mauvaise\x00")
    body = good.replace("END:VCALENDAR\r\n", "") + "BEGIN:VEVENT" + bad.split("BEGIN:VEVENT", 1)[1]
    r = user.session.put(
        user.calendar,
        data=body.encode(),
        timeout=60,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert r.status_code == 400, r.text
    assert "U+0000" in r.text
    kept = user.get("kept.ics")
    assert kept.status_code == 200 and "Déjà là" in kept.text  # the calendar was not replaced
    assert room_count(stack) == rooms_before


def test_a_body_that_is_not_utf8_is_refused_unless_its_charset_is_named(
    someone: DavUser,
) -> None:
    latin1 = ics.event(uid="latin-1", summary="Réunion café", categories=None).encode("latin-1")
    r = someone.session.put(
        someone.url("latin.ics"),
        data=latin1,
        timeout=30,
        headers={"Content-Type": "text/calendar; charset=utf-8"},
    )
    assert r.status_code == 400 and "UTF-8" in r.text
    assert someone.get("latin.ics").status_code == 404
    named = someone.session.put(
        someone.url("latin.ics"),
        data=latin1,
        timeout=30,
        headers={"Content-Type": "text/calendar; charset=iso-8859-1"},
    )
    assert named.status_code == 201, named.text
    (ev,) = ics.vevents(someone.get("latin.ics").text)
    assert str(ev["SUMMARY"]) == "Réunion café"


def test_the_portal_form_names_the_control_character(stack: Stack) -> None:
    person = new_user(stack)
    rooms_before = room_count(stack)
    web = requests.Session()

    def csrf(path: str) -> str:
        page = web.get(stack.web_url.rstrip("/") + path, timeout=30)
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert found, page.text
        return found.group(1)

    signed_in = web.post(
        stack.web_url + "login",
        data={"login": person.login, "password": person.password, "csrf": csrf("/login")},
        timeout=30,
    )
    assert signed_in.status_code == 200 and "/login" not in signed_in.url, signed_in.text
    form = {
        "subject": "Comité\x00secret",
        "date": "2026-12-03",
        "start": "10:00",
        "duration": "60",
        "kind": "visio",
        "description": "Ordre du jour\x07",
        "invitees": "",
    }
    french = web.post(stack.web_url + "plan", data={**form, "csrf": csrf("/plan")}, timeout=30)
    assert french.status_code == 400
    assert "caractère de contrôle invisible (U+0000)" in french.text
    assert "caractère de contrôle invisible (U+0007)" in french.text
    english = web.post(
        stack.web_url + "plan?lang=en", data={**form, "csrf": csrf("/plan")}, timeout=30
    )
    assert english.status_code == 400
    assert "invisible control character (U+0000)" in english.text
    assert stored_hrefs(person) == []
    assert room_count(stack) == rooms_before


# 5. plain events are left alone ------------------------------------------------------------

PARIS_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Europe/Paris
X-LIC-LOCATION:Europe/Paris
BEGIN:DAYLIGHT
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
TZNAME:CEST
DTSTART:19700329T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
END:DAYLIGHT
BEGIN:STANDARD
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
TZNAME:CET
DTSTART:19701025T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
END:STANDARD
END:VTIMEZONE"""


def with_timezone(body: str) -> str:
    return body.replace(
        "BEGIN:VEVENT", PARIS_VTIMEZONE.replace("\n", "\r\n") + "\r\nBEGIN:VEVENT", 1
    )


PLAIN_EVENTS = {
    "no-category": ics.event(uid="plain-none", categories=None),
    "other-words": ics.event(uid="plain-words", categories="Travail,Projet X"),
    "two-category-lines": ics.event(
        uid="plain-two", categories="Travail", extra="CATEGORIES:Perso,Famille"
    ),
    "x-properties": ics.event(
        uid="plain-x",
        categories=None,
        extra="X-MOZ-GENERATION:3\nX-APPLE-TRAVEL-ADVISORY-BEHAVIOR:AUTOMATIC\n"
        'X-CUSTOM;X-PARAM="a,b;c":un,deux\\,trois',
    ),
    "recurring": ics.event(
        uid="plain-rrule",
        categories="Sport",
        extra="RRULE:FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20270301T000000Z\n"
        "EXDATE;TZID=Europe/Paris:20261207T100000",
    ),
    "timezone": with_timezone(ics.event(uid="plain-tz", categories=None)),
    "folded-lines": ics.event(
        uid="plain-folded",
        categories=None,
        extra="DESCRIPTION:Première ligne\\nSeconde ligne, repliée\n\t après une tabulation\n"
        "X-NOTE:Un texte assez long pour être replié par le client\n  à un endroit à lui",
    ),
    "unusual-order-and-alarm": (
        "BEGIN:VCALENDAR\r\nPRODID:-//Visio tests//EN\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\n"
        "SUMMARY:Ordre inhabituel\r\nDTEND:20261203T113000Z\r\nUID:plain-order\r\n"
        "DTSTART:20261203T100000Z\r\nDTSTAMP:20261130T090000Z\r\nBEGIN:VALARM\r\n"
        "ACTION:DISPLAY\r\nDESCRIPTION:Rappel\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ),
}


@pytest.mark.parametrize("body", PLAIN_EVENTS.values(), ids=PLAIN_EVENTS.keys())
def test_a_plain_event_comes_back_exactly_as_sent(
    stack: Stack, someone: DavUser, body: str
) -> None:
    rooms_before = room_count(stack)
    href = f"{ics.vevents(body)[0]['UID']}.ics"
    put = someone.put(href, body)
    assert put.status_code == 201, put.text
    got = someone.get(href)
    assert got.status_code == 200
    assert got.text == body
    # Nothing was rewritten, so the client keeps a strong ETag for what it sent.
    assert put.headers.get("ETag") and put.headers["ETag"] == got.headers.get("ETag")
    assert room_count(stack) == rooms_before


def test_bare_line_feeds_come_back_as_crlf_and_nothing_else_changes(someone: DavUser) -> None:
    body = ics.event(uid="plain-lf", categories=None, extra="X-FOO:bar").replace("\r\n", "\n")
    assert someone.put("lf.ics", body).status_code == 201
    assert someone.get("lf.ics").text == body.replace("\n", "\r\n")


CALENDAR_QUERY_NO_CATEGORIES = """<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/></D:prop>
  <C:filter>
    <C:comp-filter name="VCALENDAR">
      <C:comp-filter name="VEVENT">
        <C:prop-filter name="CATEGORIES"><C:is-not-defined/></C:prop-filter>
      </C:comp-filter>
    </C:comp-filter>
  </C:filter>
</C:calendar-query>"""


def report_without_categories(user: DavUser, calendar: str) -> set[str]:
    r = user.session.request(
        "REPORT",
        calendar,
        data=CALENDAR_QUERY_NO_CATEGORIES.encode(),
        timeout=30,
        headers={"Depth": "1", "Content-Type": "application/xml; charset=utf-8"},
    )
    assert r.status_code == 207, r.text
    return {
        e.text.rsplit("/", 1)[1]
        for e in ET.fromstring(r.content).iter("{DAV:}href")
        if e.text and e.text.endswith(".ics")
    }


def stored_hrefs(user: DavUser) -> list[str]:
    r = user.session.request("PROPFIND", user.calendar, timeout=30, headers={"Depth": "1"})
    assert r.status_code == 207, r.text
    return [
        e.text
        for e in ET.fromstring(r.content).iter("{DAV:}href")
        if e.text and e.text.endswith(".ics")
    ]


def test_calendar_query_finds_the_events_without_categories(someone: DavUser) -> None:
    calendar = someone.make_calendar()
    events = {
        "none.ics": ics.event(uid="q-none", categories=None),
        "words.ics": ics.event(uid="q-words", categories="Travail"),
        "visio.ics": ics.event(uid="q-visio", categories="Visio"),
    }
    for href, body in events.items():
        r = someone.session.put(
            urljoin(calendar, href),
            data=body.encode(),
            timeout=60,
            headers={"Content-Type": "text/calendar; charset=utf-8"},
        )
        assert r.status_code == 201, r.text
    assert report_without_categories(someone, calendar) == {"none.ics"}


def test_an_event_that_was_visio_loses_the_room_and_gains_no_empty_categories(
    stack: Stack, someone: DavUser
) -> None:
    assert someone.put("was.ics", ics.event(uid="was-visio-1", summary="Revue")).status_code == 201
    stored = someone.get("was.ics").text
    assert "X-VISIO-ROOM" in stored
    # The client removes the category and saves the event as it has it.
    r = someone.put("was.ics", stored.replace("CATEGORIES:Visio\r\n", ""))
    assert r.status_code in (200, 201, 204), r.text
    again = someone.get("was.ics").text
    unfolded = again.replace("\r\n ", "")
    assert "X-VISIO" not in unfolded and stack.web_url + "j/" not in unfolded
    assert not any(line.startswith("CATEGORIES") for line in unfolded.splitlines())
    (ev,) = ics.vevents(again)
    assert str(ev["SUMMARY"]) == "Revue"
    assert "was.ics" in report_without_categories(someone, someone.calendar)
