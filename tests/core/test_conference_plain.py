"""A plain event (never a room) goes through the room rules unchanged."""

from __future__ import annotations

from visio_core import conference, ical
from visio_core.categories import DEFAULT_RULES, RoomKind

from .conftest import JOIN_PREFIX


def test_reading_categories_adds_none_to_an_event_without(vevent, vcalendar):
    cal = ical.parse(vcalendar(vevent(categories=None)))
    before = ical.serialize(cal)
    (ev,) = conference.vevents(cal)
    assert conference.categories_of(ev) == []
    assert conference.room_kind(cal, DEFAULT_RULES) is None
    assert ical.serialize(cal) == before
    assert "CATEGORIES" not in before


def test_every_categories_line_is_read_and_none_is_merged(vevent, vcalendar):
    text = vcalendar(vevent(categories="Travail,Projet", extra=["CATEGORIES:Perso,Visio"]))
    cal = ical.parse(text)
    before = ical.serialize(cal)
    (ev,) = conference.vevents(cal)
    assert conference.categories_of(ev) == ["Travail", "Projet", "Perso", "Visio"]
    assert conference.room_kind(cal, DEFAULT_RULES) is RoomKind.VIDEO
    assert ical.serialize(cal) == before
    assert before.count("CATEGORIES:") == 2


def test_removing_a_room_from_a_plain_event_touches_nothing(vevent, vcalendar):
    extra = [
        "DESCRIPTION:\\n\\nPréparer les chiffres\\n\\n",  # leading and trailing line breaks
        "LOCATION:Salle du conseil",
        "URL:https://intranet.example.org/reunion",
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Teams:https://teams.example.org/l/abc",
        "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+33123456789,,42%23",
        'X-CUSTOM;X-P="a,b":un,deux',
    ]
    cal = ical.parse(vcalendar(vevent(categories="Travail", extra=extra)))
    before = ical.serialize(cal)
    assert conference.remove_room(cal, JOIN_PREFIX) is False
    assert ical.serialize(cal) == before


def test_removing_a_room_says_so_and_leaves_no_empty_categories(vevent, vcalendar, make_spec):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    rewritten = ical.serialize(conference.apply_room(ical.parse(vcalendar(vevent())), spec))
    # The person removed the category in their client; everything else is as stored.
    without = ical.parse(rewritten.replace("CATEGORIES:Visio\r\n", ""))
    assert conference.room_kind(without, DEFAULT_RULES) is None
    assert conference.remove_room(without, spec.join_prefix) is True
    stripped = ical.serialize(without)
    assert "CATEGORIES" not in stripped
    assert "X-VISIO" not in stripped and spec.join_url not in stripped
    assert conference.remove_room(without, spec.join_prefix) is False  # nothing left to remove


def test_a_one_event_body_is_stored_as_sent_with_crlf_line_breaks(vevent, vcalendar):
    sent = vcalendar(vevent(categories=None))
    assert ical.as_stored(sent) == sent
    assert ical.as_stored(sent.replace("\r\n", "\n")) == sent
    assert ical.as_stored(sent.rstrip("\r\n")) == sent


def test_a_body_with_a_method_is_not_stored_as_sent(vevent, vcalendar):
    # Stored resources carry no METHOD (RFC 4791 4.1): such a body is rewritten.
    assert ical.as_stored(vcalendar(vevent(categories=None), method="REQUEST")) is None
