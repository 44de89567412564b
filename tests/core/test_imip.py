"""iMIP (visio_core.imip): the METHOD calendar of one message and the e-mail carrying it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
from dataclasses import replace
from email.message import EmailMessage
from typing import Any

import pytest
from icalendar import Calendar

from tests.core.conftest import PARIS as PARIS_VTIMEZONE
from tests.core.conftest import build_vcalendar, build_vevent
from visio_core import conference
from visio_core.categories import RoomKind
from visio_core.ical import parse, serialize, unfold
from visio_core.imip import (
    DESCRIPTION_LIMIT,
    JOIN_PLACEHOLDER,
    MessageFacts,
    build_email,
    clean_header,
    description_text,
    itip_calendar,
    message_id,
    shorten,
)
from visio_core.itip import address_of, attendees, components

UID = "meeting-1@example.org"
STREAM = "rtmp://stream.example.org/live/s3cr3t-KEY"
PERSONAL = "https://visio.example.org/j/personal-TOKEN-alice"
NOW = dt.datetime(2025, 3, 1, 8, 0, tzinfo=dt.UTC)
RID_2 = "2025-03-17T09:00:00+00:00"

ORGANIZER = "ORGANIZER;CN=Olivia Org:mailto:org@example.org"
ALICE = "ATTENDEE;CN=Alice;PARTSTAT=NEEDS-ACTION;SCHEDULE-STATUS=1.2:mailto:alice@example.org"
BOB = "ATTENDEE;CN=Bob;PARTSTAT=ACCEPTED;RSVP=FALSE:mailto:bob@example.org"


def facts(**changes: object) -> MessageFacts:
    values: dict[str, object] = {
        "method": "REQUEST",
        "recurrence_id": None,
        "sequence": 2,
        "recipient": "alice@example.org",
        "organizer": "org@example.org",
        "organizer_name": "Olivia Org",
        "mail_from": "visio@example.org",
        "language": "fr",
        "join_url": PERSONAL,
        "now": NOW,
    }
    values.update(changes)
    return MessageFacts(**values)  # type: ignore[arg-type]


def stored(*extra: str, overrides: tuple[str, ...] = (), **kw: object) -> Calendar:
    lines = [
        ORGANIZER,
        ALICE,
        BOB,
        "SEQUENCE:1",
        f"X-VISIO-STREAM-URL:{STREAM}",
        f"LOCATION:{JOIN_PLACEHOLDER}",
        f"URL:{JOIN_PLACEHOLDER}",
        f"CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Visio:{JOIN_PLACEHOLDER}",
        f"DESCRIPTION:Rejoindre : {JOIN_PLACEHOLDER}\\nÀ bientôt",
        *extra,
    ]
    return parse(build_vcalendar(build_vevent(extra=lines, **kw), *overrides))  # type: ignore[arg-type]


def weekly(*extra: str, overrides: tuple[str, ...] = ()) -> Calendar:
    return stored("RRULE:FREQ=WEEKLY;COUNT=10", *extra, overrides=overrides)


def text_of(cal: Calendar) -> str:
    return unfold(serialize(cal))


def parts(msg: EmailMessage) -> list[tuple[str, str]]:
    """(content type, decoded text) of every leaf part."""
    found = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        found.append((part.get_content_type(), payload.decode("utf-8")))
    return found


def mail(cal: Calendar, f: MessageFacts) -> EmailMessage:
    return build_email(UID, itip_calendar(cal, f), f)


# --- clean_header --------------------------------------------------------------------


def test_clean_header_removes_controls() -> None:
    assert clean_header("a\r\nBcc: x@y.z") == "a Bcc: x@y.z"
    assert clean_header("a\0b\x07c\x7fd\te") == "a b c d e"
    assert clean_header("  lots   of\n\n space ") == "lots of space"


def test_clean_header_bounds_length() -> None:
    assert len(clean_header("x" * 500)) == 200
    assert clean_header("abcdef", limit=3) == "abc"


# --- itip_calendar: REQUEST ----------------------------------------------------------


def test_request_has_method_and_sequence_and_dtstamp() -> None:
    out = itip_calendar(stored(), facts())
    assert str(out["METHOD"]) == "REQUEST"
    ev: Any = components(out)[None]
    assert int(ev["SEQUENCE"]) == 2
    assert ev["DTSTAMP"].dt == NOW


def test_request_sets_rsvp_true_on_every_attendee() -> None:
    ev = components(itip_calendar(stored(), facts()))[None]
    found = attendees(ev)
    assert set(found) == {"alice@example.org", "bob@example.org"}
    assert all(str(a.params.get("RSVP")).upper() == "TRUE" for a in found.values())
    assert all("SCHEDULE-STATUS" not in a.params for a in found.values())


def test_request_does_not_change_the_stored_calendar() -> None:
    cal = stored()
    before = serialize(cal)
    itip_calendar(cal, facts())
    assert serialize(cal) == before


def test_organizer_gets_sent_by_system_address() -> None:
    ev = components(itip_calendar(stored(), facts()))[None]
    org = ev["ORGANIZER"]
    assert address_of(org) == "org@example.org"
    assert str(org.params["SENT-BY"]).lower() == "mailto:visio@example.org"
    assert str(org.params["CN"]) == "Olivia Org"


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_stream_url_never_in_calendar(method: str) -> None:
    out = itip_calendar(stored(), facts(method=method))
    text = text_of(out)
    assert "X-VISIO-STREAM-URL" not in text
    assert STREAM not in text


def test_stream_url_removed_from_overrides_too() -> None:
    ov = build_vevent(
        start=";TZID=Europe/Paris:20250317T150000",
        end=";TZID=Europe/Paris:20250317T160000",
        extra=[
            "RECURRENCE-ID;TZID=Europe/Paris:20250317T100000",
            ORGANIZER,
            ALICE,
            f"X-VISIO-STREAM-URL:{STREAM}",
        ],
    )
    cal = weekly(overrides=(ov,))
    assert STREAM not in text_of(itip_calendar(cal, facts()))
    assert STREAM not in text_of(itip_calendar(cal, facts(recurrence_id=RID_2)))


def test_placeholder_replaced_by_personal_link_everywhere() -> None:
    out = itip_calendar(stored(), facts())
    ev = components(out)[None]
    text = text_of(out)
    assert JOIN_PLACEHOLDER not in text
    assert str(ev["LOCATION"]) == PERSONAL
    assert str(ev["URL"]) == PERSONAL
    assert str(ev["CONFERENCE"]) == PERSONAL
    assert str(ev["DESCRIPTION"]) == f"Rejoindre : {PERSONAL}\nÀ bientôt"
    # Parameters of the replaced value are kept.
    assert str(ev["CONFERENCE"].params["LABEL"]) == "Visio"
    assert "VIDEO" in str(ev["CONFERENCE"].params["FEATURE"])


def test_each_recipient_gets_their_own_link() -> None:
    cal = stored()
    other = "https://visio.example.org/j/personal-TOKEN-bob"
    a = text_of(itip_calendar(cal, facts()))
    b = text_of(itip_calendar(cal, facts(recipient="bob@example.org", join_url=other)))
    assert PERSONAL in a and other not in a
    assert other in b and PERSONAL not in b


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_placeholder_replaced_in_other_properties(method: str) -> None:
    cal = stored(
        f"X-ALT-DESC;FMTTYPE=text/html:<a href='{JOIN_PLACEHOLDER}'>Rejoindre</a>",
        f"COMMENT:Lien : {JOIN_PLACEHOLDER}",
    )
    text = text_of(itip_calendar(cal, facts(method=method)))
    assert JOIN_PLACEHOLDER not in text


def test_placeholder_without_link_is_dropped() -> None:
    out = itip_calendar(stored(), facts(join_url=None))
    text = text_of(out)
    assert JOIN_PLACEHOLDER not in text
    assert "CONFERENCE" not in text


def test_request_whole_series_carries_overrides() -> None:
    ov = build_vevent(
        start=";TZID=Europe/Paris:20250317T150000",
        end=";TZID=Europe/Paris:20250317T160000",
        extra=["RECURRENCE-ID;TZID=Europe/Paris:20250317T100000", ORGANIZER, ALICE],
    )
    out = itip_calendar(weekly(overrides=(ov,)), facts())
    assert set(components(out)) == {None, RID_2}
    one = itip_calendar(weekly(overrides=(ov,)), facts(recurrence_id=RID_2))
    assert set(components(one)) == {RID_2}


def test_timezone_is_included() -> None:
    out = itip_calendar(stored(), facts())
    assert [str(tz["TZID"]) for tz in out.walk("VTIMEZONE")] == ["Europe/Paris"]


# --- itip_calendar: CANCEL -----------------------------------------------------------


def test_cancel_whole_event() -> None:
    out = itip_calendar(stored(), facts(method="CANCEL", sequence=3))
    assert str(out["METHOD"]) == "CANCEL"
    comps = components(out)
    assert list(comps) == [None]
    ev: Any = comps[None]
    assert str(ev["STATUS"]) == "CANCELLED"
    assert int(ev["SEQUENCE"]) == 3
    assert all(
        "RSVP" not in a.params or a.params["RSVP"] == "FALSE" for a in attendees(ev).values()
    )


def test_cancel_to_removed_attendee_names_them() -> None:
    out = itip_calendar(stored(), facts(method="CANCEL", recipient="carol@example.org"))
    ev = components(out)[None]
    assert "carol@example.org" in attendees(ev)
    assert str(ev["STATUS"]) == "CANCELLED"


def test_cancel_to_listed_attendee_does_not_duplicate_them() -> None:
    ev = components(itip_calendar(stored(), facts(method="CANCEL")))[None]
    listed = [address_of(a) for a in ev.get("ATTENDEE")]
    assert listed.count("alice@example.org") == 1


def test_cancel_of_exdate_synthesises_the_occurrence() -> None:
    cal = weekly("EXDATE;TZID=Europe/Paris:20250317T100000")
    out = itip_calendar(cal, facts(method="CANCEL", recurrence_id=RID_2))
    comps = components(out)
    assert list(comps) == [RID_2]
    ev: Any = comps[RID_2]
    assert "RRULE" not in ev and "EXDATE" not in ev
    start = ev["DTSTART"].dt
    assert start == dt.datetime(2025, 3, 17, 9, 0, tzinfo=dt.UTC)
    assert ev["DTEND"].dt - start == dt.timedelta(hours=1)
    assert ev["RECURRENCE-ID"].dt == start
    assert str(ev["STATUS"]) == "CANCELLED"
    assert str(ev["UID"]) == UID
    assert STREAM not in text_of(out)
    assert "TZID=Europe/Paris" in text_of(out).split("RECURRENCE-ID", 1)[1].split(":", 1)[0]


def test_cancel_of_cancelled_override() -> None:
    ov = build_vevent(
        extra=[
            "RECURRENCE-ID;TZID=Europe/Paris:20250317T100000",
            ORGANIZER,
            ALICE,
            "STATUS:CANCELLED",
        ],
        start=";TZID=Europe/Paris:20250317T100000",
        end=";TZID=Europe/Paris:20250317T110000",
    )
    out = itip_calendar(weekly(overrides=(ov,)), facts(method="CANCEL", recurrence_id=RID_2))
    assert list(components(out)) == [RID_2]
    assert text_of(out).count("STATUS:CANCELLED") == 1


# --- build_email ---------------------------------------------------------------------


def test_mime_structure_and_method_parameter() -> None:
    msg = mail(stored(), facts())
    assert msg.get_content_type() == "multipart/mixed"
    top: Any = msg.get_payload()
    assert isinstance(top, list) and len(top) == 2
    alt, attachment = top
    assert alt.get_content_type() == "multipart/alternative"
    inner: Any = alt.get_payload()
    assert [p.get_content_type() for p in inner] == ["text/plain", "text/html", "text/calendar"]
    cal_part = inner[2]
    assert cal_part.get_param("method") == "REQUEST"
    assert str(cal_part.get_param("charset")).lower() == "utf-8"
    assert attachment.get_content_type() == "application/ics"
    assert attachment.get_filename() == "invite.ics"
    ics = cal_part.get_payload(decode=True).decode()
    assert "METHOD:REQUEST" in ics
    # The text part is line-normalised by the email package (CRLF again on the wire).
    assert attachment.get_payload(decode=True).decode().replace("\r\n", "\n") == ics.replace(
        "\r\n", "\n"
    )


def test_cancel_mail_method_matches() -> None:
    msg = mail(stored(), facts(method="CANCEL"))
    cal_part: Any = next(p for p in msg.walk() if p.get_content_type() == "text/calendar")
    assert cal_part.get_param("method") == "CANCEL"
    assert "METHOD:CANCEL" in cal_part.get_payload(decode=True).decode()
    assert "Annulé" in str(msg["Subject"])


def test_headers() -> None:
    msg = mail(stored(), facts())
    assert str(msg["Subject"]) == "Invitation : Point équipe"
    assert msg["From"].addresses[0].addr_spec == "visio@example.org"
    assert msg["From"].addresses[0].display_name == "Olivia Org"
    assert msg["To"].addresses[0].addr_spec == "alice@example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == "org@example.org"
    assert msg["Message-ID"].endswith("@example.org>")
    assert msg["Auto-Submitted"] == "auto-generated"


def test_update_subject_in_english() -> None:
    msg = mail(stored(), facts(language="en", is_update=True))
    assert str(msg["Subject"]) == "Updated invitation: Point équipe"


@pytest.mark.parametrize("method", ["REQUEST", "CANCEL"])
def test_stream_url_never_in_mail(method: str) -> None:
    msg = mail(stored(), facts(method=method))
    for content_type, text in parts(msg):
        assert STREAM not in unfold(text), content_type
        assert "X-VISIO-STREAM-URL" not in unfold(text), content_type
    assert STREAM not in msg.as_string()


def test_stream_url_never_in_exdate_cancel_mail() -> None:
    cal = weekly("EXDATE;TZID=Europe/Paris:20250317T100000")
    msg = mail(cal, facts(method="CANCEL", recurrence_id=RID_2))
    for _, text in parts(msg):
        assert STREAM not in unfold(text)


def test_personal_link_in_every_part() -> None:
    msg = mail(stored(), facts())
    found = parts(msg)
    assert [c for c, _ in found] == [
        "text/plain",
        "text/html",
        "text/calendar",
        "application/ics",
    ]
    for content_type, text in found:
        assert JOIN_PLACEHOLDER not in unfold(text), content_type
        assert PERSONAL in unfold(text), content_type


def test_cancel_mail_has_no_join_link_in_bodies() -> None:
    msg = mail(stored(), facts(method="CANCEL"))
    for content_type, text in parts(msg):
        if content_type in ("text/plain", "text/html"):
            assert PERSONAL not in text
            assert "annulée" in text


@pytest.mark.parametrize(
    ("summary", "name"),
    [
        ("Réunion\\nBcc: evil@example.net", "Olivia\r\nBcc: evil@example.net"),
        ("A\\r\\nX-Injected: 1", "Org\nX-Injected: 1"),
        ("Tab\\there\\, NUL", "Nul\0Name"),
    ],
)
def test_headers_never_carry_newlines(summary: str, name: str) -> None:
    cal = parse(
        build_vcalendar(
            build_vevent(
                summary=summary,
                extra=[
                    "ORGANIZER;CN=Evil:mailto:org@example.org",
                    'ATTENDEE;CN="Eve^nBcc: x@example.net":mailto:alice@example.org',
                ],
            )
        )
    )
    f = facts(organizer_name=name)
    msg = mail(cal, f)
    for header in ("Subject", "From", "To", "Reply-To"):
        value = str(msg[header])
        assert not any(c in value for c in "\r\n\0"), (header, value)
    reparsed = email.message_from_bytes(msg.as_bytes(), policy=email.policy.default)
    assert reparsed["Bcc"] is None
    assert reparsed["X-Injected"] is None
    assert reparsed["Subject"] == msg["Subject"]


def test_message_id_is_stable_and_distinct() -> None:
    a = message_id(UID, facts(), "example.org")
    assert a == message_id(UID, facts(now=NOW + dt.timedelta(hours=3)), "example.org")
    assert a.startswith("<") and a.endswith("@example.org>")
    others = {
        message_id(UID, replace(facts(), recipient="bob@example.org"), "example.org"),
        message_id(UID, replace(facts(), sequence=3), "example.org"),
        message_id(UID, replace(facts(), method="CANCEL"), "example.org"),
        message_id(UID, replace(facts(), recurrence_id=RID_2), "example.org"),
        message_id("other@example.org", facts(), "example.org"),
    }
    assert a not in others and len(others) == 5


def test_mail_message_id_stable_for_equal_inputs() -> None:
    one = mail(stored(), facts())
    two = mail(stored(), facts(now=NOW + dt.timedelta(minutes=5)))
    assert one["Message-ID"] == two["Message-ID"]


def test_rsvp_links_in_bodies() -> None:
    urls = {
        "ACCEPTED": "https://visio.example.org/r/yes",
        "DECLINED": "https://visio.example.org/r/no",
    }
    msg = mail(stored(), facts(rsvp_urls=urls, language="en"))
    texts = dict(parts(msg))
    assert "https://visio.example.org/r/yes" in texts["text/plain"]
    assert "Decline" in texts["text/html"]


def test_ics_text_override_is_used() -> None:
    f = facts()
    ics = serialize(itip_calendar(stored(), f)).replace("Point équipe", "Rendered")
    msg = build_email(UID, itip_calendar(stored(), f), f, ics_text=ics)
    cal_text = next(t for c, t in parts(msg) if c == "text/calendar")
    assert "Rendered" in cal_text


def test_untitled_event_subject_fr() -> None:
    cal = parse(build_vcalendar(build_vevent(summary="", extra=[ORGANIZER, ALICE])))
    assert str(mail(cal, facts())["Subject"]) == "Invitation : (sans titre)"


def test_untitled_event_subject_en_is_english() -> None:
    cal = parse(build_vcalendar(build_vevent(summary="", extra=[ORGANIZER, ALICE])))
    assert "sans titre" not in str(mail(cal, facts(language="en"))["Subject"])


def test_mail_for_outlook_timezone() -> None:
    zone = "Romance Standard Time"
    tz = PARIS_VTIMEZONE.replace("TZID:Europe/Paris", f"TZID:{zone}")
    event = build_vevent(
        start=f";TZID={zone}:20250710T100000",
        end=f";TZID={zone}:20250710T110000",
        extra=[ORGANIZER, ALICE],
    )
    msg = mail(parse(build_vcalendar(event, timezones=(tz,))), facts(language="en"))
    body = dict(parts(msg))["text/plain"]
    assert "10:00 – 11:00" in body


# --- the organizer's description in the bodies -------------------------------------

INJECTION = "<script>alert(1)</script><b>x</b> & <a href='https://evil.example.net/'>clic</a>"
AGENDA = f"Point d'étape, ordre du jour joint.\n1. Budget\n\n{INJECTION}\nhttps://docs.example.org/x?a=1&b=2"


PHONE = {"dialin_number": "+33 1 23 45 67 89", "room_number": "123456"}


def visio_block() -> str:
    spec = conference.ConferenceSpec(
        room_id="r1",
        room_number="123456",
        kind=RoomKind.VIDEO,
        join_url=JOIN_PLACEHOLDER,
        join_prefix="https://visio.invalid/",
        dialin_number="+33 1 23 45 67 89",
    )
    return conference.description_block(spec)


def with_description(cal: Calendar, text: str, recurrence_id: str | None = None) -> Calendar:
    ev = components(cal)[recurrence_id]
    ev.pop("DESCRIPTION", None)
    ev.add("DESCRIPTION", text)
    return cal


def bodies(msg: EmailMessage) -> tuple[str, str]:
    texts = dict(parts(msg))
    return texts["text/plain"], texts["text/html"]


def html_description(body_html: str) -> str:
    """The description paragraph of the HTML part, as the text a reader sees."""
    start = body_html.index("<p data-visio='description'>") + len("<p data-visio='description'>")
    shown = body_html[start : body_html.index("</p>", start)]
    return html.unescape(shown.replace("<br>\n", "\n"))


def test_description_in_both_parts_without_our_block() -> None:
    cal = with_description(stored(), f"{AGENDA}\n\n{visio_block()}")
    f = facts(rsvp_urls={"ACCEPTED": "https://v.example.org/r"}, **PHONE)
    text, body_html = bodies(mail(cal, f))
    label = "Ordre du jour / Description :\n"
    assert label + "Point d'étape, ordre du jour joint.\n1. Budget\n\n" in text
    assert INJECTION in text and "https://docs.example.org/x?a=1&b=2" in text
    assert html_description(body_html) == AGENDA
    for part in (text, body_html):
        assert conference.BLOCK_START not in part and "123456 suivi de #" in part
        assert "Visioconférence" not in part and "tel:" not in part  # the block's own lines
    # Nothing from the event became markup: only the join button and the answer link.
    assert "<script" not in body_html and "<b>" not in body_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;b&gt;x&lt;/b&gt;" in body_html
    assert body_html.count("<a ") == 2 and "href='https://evil" not in body_html
    assert "href='https://docs" not in body_html
    assert "1. Budget<br>\n<br>\n" in body_html  # line breaks kept


def test_description_text_around_a_block_in_the_middle() -> None:
    cal = with_description(stored(), f"Avant\n\n{visio_block()}\n\nAprès")
    ev = components(itip_calendar(cal, facts()))[None]
    assert description_text(ev, PERSONAL) == "Avant\nAprès"
    only_block = with_description(stored(), visio_block())
    ev = components(itip_calendar(only_block, facts()))[None]
    assert description_text(ev, PERSONAL) == ""
    text, body_html = bodies(mail(only_block, facts()))
    assert "Ordre du jour" not in text and "data-visio='description'" not in body_html


def test_description_keeps_the_recipients_link_and_drops_controls() -> None:
    cal = with_description(stored(), f"Lien : {JOIN_PLACEHOLDER}\r\nfin\x00\x07 ici\t!")
    text, _ = bodies(mail(cal, facts()))
    assert f"Lien : {PERSONAL}\nfin   ici\t!" in text
    assert JOIN_PLACEHOLDER not in text


def test_long_description_is_cut_with_an_ellipsis() -> None:
    words = " ".join(f"mot{i}" for i in range(2000))  # ~13,000 characters
    cal = with_description(stored(), f"{words}\n\n{visio_block()}")
    text, body_html = bodies(mail(cal, facts(**PHONE)))
    shown = html_description(body_html)
    assert shown.endswith("…") and len(shown) <= DESCRIPTION_LIMIT + 1
    assert shown[:-1].split(" ")[-1] in words.split(" ")  # cut after a whole word
    assert shown in text and "mot1999" not in text
    assert "123456 suivi de #" in text  # the phone line still follows


def test_shorten() -> None:
    assert shorten("court") == "court"
    assert shorten("x" * DESCRIPTION_LIMIT) == "x" * DESCRIPTION_LIMIT
    assert shorten("x" * 5000) == "x" * DESCRIPTION_LIMIT + "…"  # no space: a hard cut
    assert shorten("un deux trois", limit=9) == "un deux…"


def test_update_shows_the_new_description_and_cancel_none() -> None:
    cal = with_description(stored(), f"Nouvel ordre du jour\n{visio_block()}")
    text, body_html = bodies(mail(cal, facts(is_update=True, sequence=3)))
    assert "Nouvel ordre du jour" in text and html_description(body_html) == "Nouvel ordre du jour"
    for method in ("CANCEL", "REPLY"):
        text, body_html = bodies(mail(cal, facts(method=method)))
        assert "Nouvel ordre du jour" not in text + body_html, method


def test_occurrence_mail_shows_the_occurrences_description_in_english() -> None:
    override = build_vevent(
        start=";TZID=Europe/Paris:20250317T100000",
        extra=[ORGANIZER, ALICE, f"RECURRENCE-ID:{'20250317T090000Z'}", "DESCRIPTION:Séance 2"],
    )
    cal = with_description(weekly(overrides=(override,)), "Toutes les séances")
    text, _ = bodies(mail(cal, facts(recurrence_id=RID_2, language="en")))
    assert "Agenda / Description :\nSéance 2" in text and "Toutes les séances" not in text
