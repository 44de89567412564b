"""apply_room: what a calendar client sees in an event after the server rewrote it."""

from __future__ import annotations

import pytest

from visio_core import conference, ical
from visio_core.categories import RoomKind


def rewrite(text, spec):
    return ical.serialize(conference.apply_room(ical.parse(text), spec))


def event_props(text, index=0):
    return conference.vevents(ical.parse(text))[index]


def descriptions(text):
    return [str(ev.get("DESCRIPTION", "")) for ev in conference.vevents(ical.parse(text))]


def test_video_conference_property(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec()
    out = rewrite(vcalendar(vevent()), spec)
    confs = lines_of(out, "CONFERENCE")
    assert len(confs) == 1
    params, value = confs[0]
    assert value == spec.join_url
    assert params["VALUE"] == "URI"
    assert params["FEATURE"] == ["AUDIO", "VIDEO"]
    assert params["LABEL"] == "Rejoindre la réunion"


def test_audio_room_has_audio_feature_only(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec(kind=RoomKind.AUDIO)
    out = rewrite(vcalendar(vevent(categories="Audio")), spec)
    [(params, value)] = lines_of(out, "CONFERENCE")
    assert value == spec.join_url
    assert params["FEATURE"] == "AUDIO"
    assert "Audioconférence" in descriptions(out)[0]
    assert "Visioconférence" not in descriptions(out)[0]


def test_link_goes_into_empty_url_and_location(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec()
    out = rewrite(vcalendar(vevent()), spec)
    assert [v for _, v in lines_of(out, "URL")] == [spec.join_url]
    assert [v for _, v in lines_of(out, "LOCATION")] == [spec.join_url]


def test_blank_location_is_filled(vevent, vcalendar, make_spec):
    spec = make_spec()
    out = rewrite(vcalendar(vevent(extra=["LOCATION:", "URL:"])), spec)
    ev = event_props(out)
    assert str(ev["LOCATION"]) == spec.join_url
    assert str(ev["URL"]) == spec.join_url


def test_client_url_and_location_are_kept(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec()
    extra = ["LOCATION:Salle Jaurès\\, 2e étage", "URL:https://intranet.example.org/projet"]
    out = rewrite(vcalendar(vevent(extra=extra)), spec)
    assert [v for _, v in lines_of(out, "LOCATION")] == ["Salle Jaurès\\, 2e étage"]
    assert [v for _, v in lines_of(out, "URL")] == ["https://intranet.example.org/projet"]
    # the link is still reachable through CONFERENCE and the description
    assert spec.join_url in descriptions(out)[0]


def test_description_block_after_existing_text(vevent, vcalendar, make_spec):
    spec = make_spec()
    extra = ["DESCRIPTION:Ordre du jour :\\n1. budget\\n2. planning"]
    out = rewrite(vcalendar(vevent(extra=extra)), spec)
    [text] = descriptions(out)
    before, block = text.split(conference.BLOCK_START)
    assert before == "Ordre du jour :\n1. budget\n2. planning\n\n"
    assert block.endswith(conference.BLOCK_END)
    assert "Visioconférence" in block
    assert f"Rejoindre la réunion : {spec.join_url}" in block


def test_description_is_only_the_block_when_there_was_none(vevent, vcalendar, make_spec):
    out = rewrite(vcalendar(vevent()), make_spec())
    [text] = descriptions(out)
    assert text.startswith(conference.BLOCK_START)
    assert text.endswith(conference.BLOCK_END)


def test_room_properties_written(vevent, vcalendar, make_spec):
    spec = make_spec()
    ev = event_props(rewrite(vcalendar(vevent()), spec))
    assert str(ev[conference.ROOM_PROP]) == spec.room_id
    assert str(ev[conference.ROOM_NUMBER_PROP]) == spec.room_number


def test_dialin_adds_phone_conference_and_text(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    out = rewrite(vcalendar(vevent()), spec)
    confs = lines_of(out, "CONFERENCE")
    assert [v for _, v in confs] == [spec.join_url, f"tel:+33123456789,,{spec.room_number}%23"]
    phone_params = confs[1][0]
    assert phone_params["FEATURE"] == "PHONE"
    assert phone_params["VALUE"] == "URI"
    assert phone_params["LABEL"] == "Rejoindre par téléphone"
    [text] = descriptions(out)
    assert "+33 1 23 45 67 89" in text
    assert f"numéro de salle {spec.room_number} suivi de #" in text
    assert f"tel:+33123456789,,{spec.room_number}%23" in text


def test_without_dialin_no_phone_text_anywhere(vevent, vcalendar, make_spec):
    out = rewrite(vcalendar(vevent()), make_spec(dialin_number=None))
    for word in ("tel:", "téléphone", "FEATURE=PHONE", "PHONE"):
        assert word not in out
    out_en = rewrite(vcalendar(vevent()), make_spec(dialin_number="", language="en"))
    assert "tel:" not in out_en
    assert "phone" not in out_en.lower()


def test_removing_dialin_removes_phone_text(vevent, vcalendar, make_spec):
    with_phone = rewrite(vcalendar(vevent()), make_spec(dialin_number="+33 1 23 45 67 89"))
    assert "tel:" in with_phone
    without = rewrite(with_phone, make_spec(dialin_number=None))
    assert "tel:" not in without
    assert "téléphone" not in without


def test_every_vevent_is_rewritten(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec()
    master = vevent(extra=["RRULE:FREQ=WEEKLY;COUNT=10"])
    override = vevent(
        start=";TZID=Europe/Paris:20250317T140000",
        end=";TZID=Europe/Paris:20250317T150000",
        summary="Point équipe (décalé)",
        extra=["RECURRENCE-ID;TZID=Europe/Paris:20250317T100000", "LOCATION:Salle 3"],
    )
    out = rewrite(vcalendar(master, override), spec)
    assert [v for _, v in lines_of(out, "CONFERENCE")] == [spec.join_url, spec.join_url]
    assert [v for _, v in lines_of(out, "X-VISIO-ROOM")] == [spec.room_id, spec.room_id]
    assert all(d.count(conference.BLOCK_START) == 1 for d in descriptions(out))
    assert str(event_props(out, 0)["LOCATION"]) == spec.join_url
    assert str(event_props(out, 1)["LOCATION"]) == "Salle 3"
    # the recurrence itself is untouched
    assert "RRULE:FREQ=WEEKLY;COUNT=10" in out
    assert "RECURRENCE-ID;TZID=Europe/Paris:20250317T100000" in out


@pytest.mark.parametrize("dialin", [None, "+33 1 23 45 67 89"])
@pytest.mark.parametrize("kind", [RoomKind.VIDEO, RoomKind.AUDIO])
def test_applying_twice_is_byte_identical(vevent, vcalendar, make_spec, dialin, kind):
    spec = make_spec(dialin_number=dialin, kind=kind)
    extra = [
        "DESCRIPTION:Notes de la réunion",
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Teams:https://teams.microsoft.com/l/meetup-join/x",
    ]
    once = rewrite(vcalendar(vevent(extra=extra)), spec)
    twice = rewrite(once, spec)
    assert twice == once
    assert twice.count(conference.BLOCK_START) == 1
    assert twice.count("teams.microsoft.com") == 1


def test_client_that_dropped_our_properties_gets_one_block(vevent, vcalendar, make_spec):
    spec = make_spec()
    once = rewrite(vcalendar(vevent(extra=["DESCRIPTION:Notes"])), spec)
    cal = ical.parse(once)
    for ev in conference.vevents(cal):
        for name in ("X-VISIO-ROOM", "X-VISIO-ROOM-NUMBER", "CONFERENCE", "URL"):
            ev.pop(name, None)
    again = rewrite(ical.serialize(cal), spec)
    assert again == once


def test_language_change_replaces_the_block(vevent, vcalendar, make_spec, lines_of):
    text = vcalendar(vevent(extra=["DESCRIPTION:Mes notes"]))
    english = rewrite(text, make_spec(language="en", dialin_number="+33 1 23 45 67 89"))
    [desc_en] = descriptions(english)
    assert "Join the meeting:" in desc_en
    assert "By phone: call" in desc_en
    assert lines_of(english, "CONFERENCE")[0][0]["LABEL"] == "Join the meeting"

    french = rewrite(english, make_spec(language="fr", dialin_number="+33 1 23 45 67 89"))
    [desc_fr] = descriptions(french)
    assert desc_fr.count(conference.BLOCK_START) == 1
    assert desc_fr.count(conference.BLOCK_END) == 1
    assert "Join the meeting" not in french
    assert "Rejoindre la réunion :" in desc_fr
    assert desc_fr.startswith("Mes notes\n\n")
    assert len(lines_of(french, "CONFERENCE")) == 2

    back = rewrite(french, make_spec(language="en", dialin_number="+33 1 23 45 67 89"))
    assert back == english


def test_other_conference_links_are_kept(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec()
    teams = "https://teams.microsoft.com/l/meetup-join/19%3ameeting_abc"
    extra = [f"CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Microsoft Teams:{teams}"]
    out = rewrite(vcalendar(vevent(extra=extra)), spec)
    confs = lines_of(out, "CONFERENCE")
    assert [v for _, v in confs] == [spec.join_url, teams]
    assert confs[1][0]["LABEL"] == "Microsoft Teams"
    assert confs[1][0]["FEATURE"] == "VIDEO"


def test_new_join_url_replaces_old_one(vevent, vcalendar, make_spec):
    old = make_spec(join_url="https://visio.example.org/j/OLDTOKEN")
    new = make_spec(join_url="https://visio.example.org/j/NEWTOKEN")
    out = rewrite(rewrite(vcalendar(vevent()), old), new)
    assert "OLDTOKEN" not in out
    assert out.count("NEWTOKEN") >= 3  # CONFERENCE, URL, LOCATION, DESCRIPTION


def test_apply_returns_the_same_calendar(vevent, vcalendar, make_spec):
    cal = ical.parse(vcalendar(vevent()))
    assert conference.apply_room(cal, make_spec()) is cal
    assert conference.has_room_properties(cal)
