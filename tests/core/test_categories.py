"""Which CATEGORIES values make an event a video or audio room."""

from __future__ import annotations

import time

import pytest

from visio_core.categories import (
    DEFAULT_RULES,
    CategoryRules,
    RoomKind,
    normalize,
    parse_word_list,
)


@pytest.mark.parametrize(
    "word",
    [
        "Visio",
        "VISIO",
        "visio",
        "visioconférence",
        "VISIOCONFÉRENCE",
        "Visio-Conférence",
        "visio conference",
        "Visio_Conference",
        "  Visio  ",
        "Visio\u00a0conférence",  # no-break space, as some clients type it
        "Vide\u0301o",  # decomposed accent (macOS input)
        "vidéo",
        "VIDEO",
        "Video Conference",
        "Vidéo-conférence",
        "Video call",
        "Appel vidéo",
    ],
)
def test_video_words_in_many_spellings(word):
    assert DEFAULT_RULES.kind([word]) is RoomKind.VIDEO


@pytest.mark.parametrize(
    "word",
    [
        "Audio",
        "AUDIO",
        "audioconference",
        "Audioconférence",
        "Audio-Conférence",
        "audio conference",
        "Conférence téléphonique",
        "conference telephonique",
        "Conference call",
    ],
)
def test_audio_words_in_many_spellings(word):
    assert DEFAULT_RULES.kind([word]) is RoomKind.AUDIO


@pytest.mark.parametrize(
    "categories",
    [
        [],
        ["Work"],
        ["Réunion", "Perso"],
        ["Visionnage"],  # starts like "visio" but is another word
        ["Audiovisuel"],
        ["Videos"],
        ["Visio (Teams)"],
        [""],
    ],
)
def test_no_room_without_a_matching_word(categories):
    assert DEFAULT_RULES.kind(categories) is None


def test_one_matching_category_among_several_is_enough():
    assert DEFAULT_RULES.kind(["Travail", "Client X", "Visio", "Important"]) is RoomKind.VIDEO
    assert DEFAULT_RULES.kind(["Travail", "audio", "Important"]) is RoomKind.AUDIO


@pytest.mark.parametrize("categories", [["Audio", "Visio"], ["Visio", "Audio"], ["AUDIO", "vidéo"]])
def test_video_wins_over_audio(categories):
    assert DEFAULT_RULES.kind(categories) is RoomKind.VIDEO


def test_categories_can_be_any_iterable():
    assert DEFAULT_RULES.kind(c for c in ("Work", "Visio")) is RoomKind.VIDEO
    assert DEFAULT_RULES.kind(("Audio",)) is RoomKind.AUDIO


def test_huge_category_value_is_ignored_quickly():
    huge = "Visio" + "x" * 9_995
    assert len(huge) == 10_000
    started = time.perf_counter()
    for _ in range(100):
        assert DEFAULT_RULES.kind([huge]) is None
        assert DEFAULT_RULES.wants_recording([huge]) is False
    assert time.perf_counter() - started < 0.5


def test_huge_category_does_not_hide_a_real_word_next_to_it():
    assert DEFAULT_RULES.kind(["-" * 10_000, "Visio"]) is RoomKind.VIDEO
    assert DEFAULT_RULES.kind(["Visio" * 2_000, "Audio"]) is RoomKind.AUDIO


@pytest.mark.parametrize(
    "categories", [["Enregistrement"], ["RECORDING"], ["record"], ["Visio", "enregistrement"]]
)
def test_recording_words(categories):
    assert DEFAULT_RULES.wants_recording(categories) is True


@pytest.mark.parametrize("categories", [[], ["Visio"], ["Audio", "Work"], ["Recordings old"]])
def test_no_recording_without_the_word(categories):
    assert DEFAULT_RULES.wants_recording(categories) is False


def test_recording_word_alone_does_not_make_a_room():
    assert DEFAULT_RULES.kind(["Enregistrement"]) is None


def test_custom_word_lists():
    rules = CategoryRules.from_words(
        video=["Réunion en ligne", "Jitsi"], audio=["Téléphone"], record=["Archivé"]
    )
    assert rules.kind(["reunion-en-ligne"]) is RoomKind.VIDEO
    assert rules.kind(["JITSI"]) is RoomKind.VIDEO
    assert rules.kind(["telephone"]) is RoomKind.AUDIO
    assert rules.wants_recording(["ARCHIVE"]) is True
    # the defaults no longer apply once the lists are replaced
    assert rules.kind(["Visio"]) is None
    assert rules.kind(["Audio"]) is None
    assert rules.wants_recording(["Recording"]) is False


def test_custom_word_lists_ignore_blank_words():
    rules = CategoryRules.from_words(video=["", "  ", "Visio"], audio=[" "], record=[])
    assert rules.kind([""]) is None
    assert rules.kind(["   "]) is None
    assert rules.kind(["visio"]) is RoomKind.VIDEO
    assert rules.audio == frozenset()


def test_from_words_defaults_match_default_rules():
    assert CategoryRules.from_words() == DEFAULT_RULES


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Visio, Vidéo ,Video call", ["Visio", "Vidéo", "Video call"]),
        ("Visio,,  ,Audio,", ["Visio", "Audio"]),
        ("", []),
        ("   ", []),
        ("Jitsi", ["Jitsi"]),
    ],
)
def test_parse_word_list(value, expected):
    assert parse_word_list(value) == expected


def test_parsed_word_list_feeds_the_rules():
    rules = CategoryRules.from_words(
        video=parse_word_list("Visio, Jitsi"),
        audio=parse_word_list("Audio , Téléphone"),
        record=parse_word_list(""),
    )
    assert rules.kind(["jitsi"]) is RoomKind.VIDEO
    assert rules.kind(["TÉLÉPHONE"]) is RoomKind.AUDIO
    assert rules.wants_recording(["Enregistrement"]) is False


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Visio-Conférence", "visioconference"),
        ("  VIDÉO  call ", "videocall"),
        ("Conférence_téléphonique", "conferencetelephonique"),
        ("l’appel", "lappel"),
    ],
)
def test_normalize(word, expected):
    assert normalize(word) == expected
