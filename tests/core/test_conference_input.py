"""Hostile input read before a calendar is stored: control characters, charsets,
credentials, and the portal's form (pure functions, no server)."""

from __future__ import annotations

import base64
from zoneinfo import ZoneInfo

import pytest

from caldav_plugin import credentials
from conference_backend.portal import meetings
from visio_core import ical

PARIS = ZoneInfo("Europe/Paris")


@pytest.mark.parametrize(
    ("char", "code"),
    [
        ("\x00", "U+0000"),
        ("\x01", "U+0001"),
        ("\x08", "U+0008"),
        ("\x0b", "U+000B"),
        ("\x0c", "U+000C"),
        ("\x1b", "U+001B"),
        ("\x1f", "U+001F"),
        ("\x7f", "U+007F"),
        ("\r", "U+000D"),
    ],
)
def test_control_characters_are_named_with_line_and_property(vevent, vcalendar, char, code):
    text = vcalendar(vevent(summary=f"Point{char}budget"))
    problem = ical.control_character(text)
    assert problem is not None
    line = text[: text.index("SUMMARY:")].count("\n") + 1
    assert problem.startswith(f"Line {line} (SUMMARY) holds ")
    assert code in problem


def test_tabs_and_line_breaks_are_not_control_characters(vevent, vcalendar):
    text = vcalendar(vevent(summary="Point\tbudget", extra=["DESCRIPTION:a\\nb\\,c"]))
    assert ical.control_character(text) is None
    assert ical.control_character(text.replace("\r\n", "\n")) is None


def test_a_control_character_on_a_folded_line_names_its_property(vevent, vcalendar):
    text = vcalendar(vevent(extra=["DESCRIPTION:Ordre du jour", " suite", "\tet fin\x00"]))
    problem = ical.control_character(text)
    assert problem is not None and "(DESCRIPTION)" in problem and "NUL" in problem


def test_typed_text_may_hold_line_breaks_and_tabs_but_no_other_control():
    assert ical.control_in_text("ligne 1\r\nligne 2\n\tfin\r") is None
    assert ical.control_in_text("a\x00b") == "U+0000"
    assert ical.control_in_text("a\x7f") == "U+007F"


def test_a_body_that_is_not_its_charset_is_refused_with_the_byte():
    assert ical.decode("café".encode(), "utf-8") == "café"
    assert ical.decode("café".encode("latin-1"), "iso-8859-1") == "café"
    with pytest.raises(ValueError, match=r"not valid utf-8 text \(byte 0xE9 at offset 3\)"):
        ical.decode("café".encode("latin-1"), "utf-8")
    with pytest.raises(ValueError, match="klingon"):
        ical.decode(b"x", "klingon")


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def decode(raw: bytes) -> str:  # Radicale's decode_request falls back to ISO-8859-1
    return raw.decode("latin-1")


@pytest.mark.parametrize(
    "header",
    [
        "Basic",
        "Basic ",
        "Basic !!!!",
        "Basic " + b64(b"alice"),
        "Basic YWxpY2U6cHc",
        "Basic \xe9t\xe9",
        "Basicxyz",
        "Basic " + b64(b""),
    ],
)
def test_malformed_basic_credentials_are_recognised(header):
    assert credentials.basic_problem(header, decode)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer abc",
        "basic lowercase-is-another-scheme",
        "Basic " + b64(b"alice:s3cret"),
        "Basic " + b64(b":"),
        "Basic " + b64(b"al\x00ice:caf\xe9"),
        "Basic  " + b64(b"a:b") + " ",
    ],
)
def test_readable_or_foreign_authorization_is_left_to_radicale(header):
    assert credentials.basic_problem(header, decode) is None


def test_an_unknown_charset_is_spotted_in_the_content_type():
    assert credentials.unknown_charset({"CONTENT_TYPE": "text/calendar; charset=klingon"}) == (
        "klingon"
    )
    assert credentials.unknown_charset({"CONTENT_TYPE": "text/calendar; charset=UTF-8"}) is None
    assert credentials.unknown_charset({"CONTENT_TYPE": "text/calendar"}) is None
    assert credentials.unknown_charset({}) is None


def test_a_quoted_charset_is_read_without_its_quotes():
    quoted = {"CONTENT_TYPE": 'text/calendar; charset="UTF-8"; component=VEVENT'}
    assert credentials.declared_charset(quoted) == "UTF-8"
    assert credentials.unknown_charset(quoted) is None
    assert credentials.with_plain_charset(quoted)["CONTENT_TYPE"] == (
        "text/calendar; charset=UTF-8; component=VEVENT"
    )
    plain = {"CONTENT_TYPE": "text/calendar; charset=utf-8"}
    assert credentials.with_plain_charset(plain) is plain


def form(**changes: str) -> meetings.Form:
    values = {"subject": "Point", "date": "2026-12-03", "start": "10:00", "duration": "60"}
    values.update(changes)
    return meetings.Form(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("field", ["subject", "description", "invitees", "stream_url"])
def test_the_plan_form_names_a_control_character_on_its_field(field):
    value = {"invitees": "b\x00b@example.org", "stream_url": "rtmp://live.example.org/a\x00"}
    typed = form(**{field: value.get(field, "Texte\x00caché")})
    if field == "stream_url":
        typed.streaming = True
    draft, errors = meetings.validate(typed, PARIS)
    assert draft is None
    assert errors == {field: ("err_control", "U+0000")}


def test_line_breaks_and_tabs_in_the_description_are_fine():
    draft, errors = meetings.validate(form(description="ligne 1\r\n\tligne 2"), PARIS)
    assert draft is not None, errors
