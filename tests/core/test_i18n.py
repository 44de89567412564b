"""i18n: the French and English text written into events."""

from __future__ import annotations

import pytest

from visio_core import i18n


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("fr", "fr"),
        ("en", "en"),
        ("EN", "en"),
        (" en ", "en"),
        ("en-US", "en"),
        ("fr_CA", "fr"),
        ("de", "fr"),
        ("", "fr"),
        (None, "fr"),
    ],
)
def test_language(value, expected):
    assert i18n.language(value) == expected


def test_every_text_exists_in_both_languages():
    for key, entry in i18n._CATALOGUE.items():
        assert set(entry) == set(i18n.LANGUAGES), key
        assert all(entry.values()), key


def test_text_in_each_language():
    assert i18n.text("join_label", "fr") == "Rejoindre la réunion"
    assert i18n.text("join_label", "en") == "Join the meeting"


def test_unknown_language_falls_back_to_french():
    assert i18n.text("join_label", "de") == "Rejoindre la réunion"


def test_values_are_filled_in():
    url = "https://visio.example.org/j/abc"
    assert i18n.text("block_join", "fr", url=url) == f"Rejoindre la réunion : {url}"
    phone = i18n.text("block_phone", "en", number="+33 1 23 45 67 89", room="123456789")
    assert phone == (
        "By phone: call +33 1 23 45 67 89, then key in the room number 123456789 followed by #"
    )


def test_values_with_braces_are_not_reformatted():
    assert (
        i18n.text("block_join", "en", url="https://x/{room}")
        == "Join the meeting: https://x/{room}"
    )
