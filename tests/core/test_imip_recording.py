"""Consent in invitations: a recorded or streamed meeting says so (text and HTML, fr/en)."""

from __future__ import annotations

import pytest
from icalendar import Calendar

from tests.core.conftest import build_vcalendar, build_vevent
from tests.core.test_imip import facts, parts
from visio_core.ical import parse
from visio_core.imip import build_email, itip_calendar, recording_notice

STREAM = "rtmps://a.rtmp.example.org/live2/abcd-efgh-SECRET"


def event(*extra: str) -> Calendar:
    lines = [
        "ORGANIZER;CN=Olivia Org:mailto:org@example.org",
        "ATTENDEE;CN=Alice:mailto:alice@example.org",
        *extra,
    ]
    return parse(build_vcalendar(build_vevent(extra=lines)))  # type: ignore[arg-type]


def bodies(cal: Calendar, language: str, method: str = "REQUEST") -> tuple[str, str]:
    f = facts(language=language, method=method)
    msg = build_email("uid-1", itip_calendar(cal, f), f)
    found = dict(parts(msg))
    return found["text/plain"], found["text/html"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ((), None),
        (("X-VISIO-RECORD:TRUE",), "recorded"),
        (("X-VISIO-RECORD:FALSE",), None),
        (("CATEGORIES:Visio,Enregistrement",), "recorded"),
        (("CATEGORIES:Visio,recording",), "recorded"),
        ((f"X-VISIO-STREAM-URL:{STREAM}",), "streamed"),
        (("X-VISIO-RECORD:TRUE", f"X-VISIO-STREAM-URL:{STREAM}"), "both"),
    ],
)
def test_which_notice(extra: tuple[str, ...], expected: str | None) -> None:
    cal = event(*extra)
    assert recording_notice(itip_calendar(cal, facts())) == expected


def test_recorded_meeting_says_so_in_french_text_and_html() -> None:
    text, html = bodies(event("X-VISIO-RECORD:TRUE"), "fr")
    assert "Cette réunion sera enregistrée" in text
    assert "Cette réunion sera enregistrée" in html
    assert "diffusée" not in text


def test_streamed_meeting_says_so_in_english_without_the_url() -> None:
    text, html = bodies(event(f"X-VISIO-STREAM-URL:{STREAM}"), "en")
    assert "streamed live" in text and "streamed live" in html
    assert "recorded" not in text
    for body in (text, html):
        assert "SECRET" not in body and "rtmp" not in body


def test_both_and_attendee_copy_carries_no_key() -> None:
    cal = event("X-VISIO-RECORD:TRUE", f"X-VISIO-STREAM-URL:{STREAM}")
    text, _ = bodies(cal, "en")
    assert "recorded and streamed live" in text
    itip = itip_calendar(cal, facts()).to_ical().decode()
    assert "SECRET" not in itip and "X-VISIO-STREAMED:TRUE" in itip


def test_plain_meeting_and_cancellation_say_nothing() -> None:
    text, html = bodies(event(), "fr")
    assert "enregistrée" not in text and "diffusée" not in html
    text, _ = bodies(event("X-VISIO-RECORD:TRUE"), "fr", method="CANCEL")
    assert "enregistrée" not in text
