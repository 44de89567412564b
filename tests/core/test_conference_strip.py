"""strip_room, room_kind and room_identity: undoing and reading a rewrite."""

from __future__ import annotations

from visio_core import conference, ical
from visio_core.categories import DEFAULT_RULES, RoomKind


def rewrite(text, spec):
    return ical.serialize(conference.apply_room(ical.parse(text), spec))


def strip(text, prefix):
    return ical.serialize(conference.strip_room(ical.parse(text), prefix))


def vevents(text):
    return conference.vevents(ical.parse(text))


def test_strip_removes_everything_ours(vevent, vcalendar, make_spec):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    original = vcalendar(vevent())
    stripped = strip(rewrite(original, spec), spec.join_prefix)
    for ours in ("CONFERENCE", "X-VISIO-ROOM", "URL", "LOCATION", "DESCRIPTION", "tel:"):
        assert ours not in stripped
    assert spec.join_url not in stripped
    assert not conference.has_room_properties(ical.parse(stripped))
    assert stripped == ical.serialize(ical.parse(original))


def test_strip_keeps_user_text_url_location_and_other_links(vevent, vcalendar, make_spec):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    teams = "https://teams.microsoft.com/l/meetup-join/abc"
    extra = [
        "DESCRIPTION:Préparer les chiffres\\net le planning",
        "LOCATION:Salle du conseil",
        "URL:https://intranet.example.org/reunion",
        f"CONFERENCE;VALUE=URI;FEATURE=VIDEO;LABEL=Teams:{teams}",
    ]
    stripped = strip(rewrite(vcalendar(vevent(extra=extra)), spec), spec.join_prefix)
    [ev] = vevents(stripped)
    assert str(ev["DESCRIPTION"]) == "Préparer les chiffres\net le planning"
    assert str(ev["LOCATION"]) == "Salle du conseil"
    assert str(ev["URL"]) == "https://intranet.example.org/reunion"
    assert [str(c) for c in conference._as_list(ev["CONFERENCE"])] == [teams]
    assert conference.BLOCK_START not in stripped
    assert "tel:" not in stripped


def test_strip_recognises_our_links_by_prefix_only(vevent, vcalendar, make_spec):
    spec = make_spec()
    other_server = "https://other.example.net/j/zzz"
    extra = [f"LOCATION:{other_server}", f"CONFERENCE;VALUE=URI:{other_server}"]
    stripped = strip(rewrite(vcalendar(vevent(extra=extra)), spec), spec.join_prefix)
    [ev] = vevents(stripped)
    assert str(ev["LOCATION"]) == other_server
    assert str(ev["CONFERENCE"]) == other_server
    assert spec.join_url not in stripped


def test_strip_keeps_someone_elses_phone_link(vevent, vcalendar, make_spec):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    theirs = "tel:+33999999999,,555000111%23"
    extra = [f"CONFERENCE;VALUE=URI;FEATURE=PHONE:{theirs}"]
    stripped = strip(rewrite(vcalendar(vevent(extra=extra)), spec), spec.join_prefix)
    [ev] = vevents(stripped)
    assert str(ev["CONFERENCE"]) == theirs


def test_strip_every_vevent(vevent, vcalendar, make_spec):
    spec = make_spec()
    master = vevent(extra=["RRULE:FREQ=DAILY;COUNT=3"])
    override = vevent(extra=["RECURRENCE-ID;TZID=Europe/Paris:20250311T100000"])
    stripped = strip(rewrite(vcalendar(master, override), spec), spec.join_prefix)
    assert len(vevents(stripped)) == 2
    assert spec.join_url not in stripped
    assert "X-VISIO" not in stripped


def test_strip_of_an_event_without_room_changes_nothing(vevent, vcalendar, make_spec):
    original = ical.serialize(ical.parse(vcalendar(vevent(extra=["DESCRIPTION:Notes"]))))
    assert strip(original, make_spec().join_prefix) == original


# room_kind -------------------------------------------------------------------


def test_room_kind_from_master(vevent, vcalendar):
    assert conference.room_kind(ical.parse(vcalendar(vevent())), DEFAULT_RULES) is RoomKind.VIDEO
    audio = vcalendar(vevent(categories="Travail,Audioconférence"))
    assert conference.room_kind(ical.parse(audio), DEFAULT_RULES) is RoomKind.AUDIO
    none = vcalendar(vevent(categories="Travail"))
    assert conference.room_kind(ical.parse(none), DEFAULT_RULES) is None
    no_categories = vcalendar(vevent(categories=None))
    assert conference.room_kind(ical.parse(no_categories), DEFAULT_RULES) is None


def test_room_kind_with_several_categories_lines(vevent, vcalendar):
    text = vcalendar(vevent(categories="Travail", extra=["CATEGORIES:Perso,VISIO"]))
    assert conference.room_kind(ical.parse(text), DEFAULT_RULES) is RoomKind.VIDEO


def test_master_decides_over_overrides(vevent, vcalendar):
    master = vevent(categories="Travail", extra=["RRULE:FREQ=DAILY;COUNT=3"])
    override = vevent(categories="Visio", extra=["RECURRENCE-ID;TZID=Europe/Paris:20250311T100000"])
    cal = ical.parse(vcalendar(master, override))
    assert conference.room_kind(cal, DEFAULT_RULES) is None

    master = vevent(categories="Audio", extra=["RRULE:FREQ=DAILY;COUNT=3"])
    override = vevent(categories="Visio", extra=["RECURRENCE-ID;TZID=Europe/Paris:20250311T100000"])
    cal = ical.parse(vcalendar(override, master))  # order in the file does not matter
    assert conference.room_kind(cal, DEFAULT_RULES) is RoomKind.AUDIO


def test_resource_of_overrides_only_asks_any_of_them(vevent, vcalendar):
    first = vevent(categories="Travail", extra=["RECURRENCE-ID;TZID=Europe/Paris:20250311T100000"])
    second = vevent(categories="Visio", extra=["RECURRENCE-ID;TZID=Europe/Paris:20250312T100000"])
    cal = ical.parse(vcalendar(first, second))
    assert conference.room_kind(cal, DEFAULT_RULES) is RoomKind.VIDEO


def test_room_kind_of_a_calendar_without_events():
    cal = ical.parse("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nEND:VCALENDAR\r\n")
    assert conference.room_kind(cal, DEFAULT_RULES) is None
    assert conference.master(cal) is None
    assert conference.room_identity(cal) is None


# room_identity ---------------------------------------------------------------


def test_room_identity_after_rewrite(vevent, vcalendar, make_spec):
    spec = make_spec()
    out = rewrite(vcalendar(vevent()), spec)
    assert conference.room_identity(ical.parse(out)) == (spec.room_id, spec.room_number)


def test_room_identity_absent_or_incomplete(vevent, vcalendar):
    assert conference.room_identity(ical.parse(vcalendar(vevent()))) is None
    only_id = vcalendar(vevent(extra=["X-VISIO-ROOM:abc"]))
    assert conference.room_identity(ical.parse(only_id)) is None


def test_room_identity_found_on_an_override(vevent, vcalendar):
    master = vevent(extra=["RRULE:FREQ=DAILY;COUNT=3"])
    override = vevent(
        extra=[
            "RECURRENCE-ID;TZID=Europe/Paris:20250311T100000",
            "X-VISIO-ROOM:room-42",
            "X-VISIO-ROOM-NUMBER:987654321",
        ]
    )
    cal = ical.parse(vcalendar(master, override))
    assert conference.room_identity(cal) == ("room-42", "987654321")


# round trips through ical ----------------------------------------------------


def test_phone_conference_round_trips_with_commas(vevent, vcalendar, lines_of):
    tel = "tel:+33123456789,,123456789%23"
    extra = [f"CONFERENCE;VALUE=URI;FEATURE=PHONE;LABEL=Téléphone:{tel}", "X-FOO:a,b,c"]
    once = ical.serialize(ical.parse(vcalendar(vevent(extra=extra))))
    twice = ical.serialize(ical.parse(once))
    assert twice == once
    [(params, value)] = lines_of(twice, "CONFERENCE")
    assert value == tel
    assert params["FEATURE"] == "PHONE"
    assert [v for _, v in lines_of(twice, "X-FOO")] == ["a,b,c"]


def test_rewritten_phone_link_survives_reparse(vevent, vcalendar, make_spec, lines_of):
    spec = make_spec(dialin_number="+33 1 23 45 67 89")
    out = rewrite(vcalendar(vevent()), spec)
    reparsed = ical.serialize(ical.parse(out))
    assert reparsed == out
    tel = f"tel:+33123456789,,{spec.room_number}%23"
    assert tel in [v for _, v in lines_of(reparsed, "CONFERENCE")]
    assert spec.tel_uri == tel


def test_serialized_output_uses_crlf_and_folds(vevent, vcalendar, make_spec):
    out = rewrite(vcalendar(vevent(extra=["DESCRIPTION:" + "x" * 200])), make_spec())
    assert "\r\n" in out
    assert "\n" not in out.replace("\r\n", "")
    assert all(len(line.encode()) <= 75 for line in out.split("\r\n"))


def test_user_text_after_the_block_stays_on_its_own_line(vevent, vcalendar, make_spec):
    spec = make_spec()
    block = conference.description_block(spec).replace("\n", "\\n")
    extra = [f"DESCRIPTION:Avant\\n\\n{block}\\nAprès la réunion\\, on déjeune."]
    text = vcalendar(vevent(extra=extra))
    [applied] = vevents(rewrite(text, spec))
    user_part = str(applied["DESCRIPTION"]).split(conference.BLOCK_START)[0]
    assert user_part.splitlines()[:2] == ["Avant", "Après la réunion, on déjeune."]
    [stripped] = vevents(strip(text, spec.join_prefix))
    assert str(stripped["DESCRIPTION"]).splitlines() == ["Avant", "Après la réunion, on déjeune."]
