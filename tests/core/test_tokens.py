"""Room numbers, join tokens and the server key."""

from __future__ import annotations

import hashlib
import re
import stat

import pytest

from visio_core import tokens

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))
URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def test_new_room_number_shape():
    for _ in range(500):
        number = tokens.new_room_number()
        assert number.isdigit()
        assert len(number) >= 9
        assert number[0] != "0"
        assert tokens.is_room_number(number)


def test_new_room_numbers_differ():
    assert len({tokens.new_room_number() for _ in range(200)}) == 200


def test_longer_room_numbers():
    number = tokens.new_room_number(12)
    assert len(number) == 12
    assert tokens.is_room_number(number)


def test_too_short_room_numbers_are_refused():
    with pytest.raises(ValueError, match="at least 9 digits"):
        tokens.new_room_number(6)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123456789", True),
        ("9876543210", True),
        ("012345678", False),  # leading zero
        ("12345678", False),  # too short
        ("12345678a", False),
        ("", False),
        ("+33123456", False),
        ("123 456 789", False),
    ],
)
def test_is_room_number(value, expected):
    assert tokens.is_room_number(value) is expected


def test_room_token_is_deterministic():
    assert tokens.room_token(KEY_A, "room-1") == tokens.room_token(KEY_A, "room-1")


def test_room_token_depends_on_key_and_room():
    base = tokens.room_token(KEY_A, "room-1")
    assert tokens.room_token(KEY_B, "room-1") != base
    assert tokens.room_token(KEY_A, "room-2") != base


def test_room_token_is_bound_to_its_purpose():
    assert tokens.derive_token(KEY_A, "room", "x") == tokens.room_token(KEY_A, "x")
    assert tokens.derive_token(KEY_A, "invite", "x") != tokens.room_token(KEY_A, "x")
    # parts are separated: ("ab", "c") is not ("a", "bc")
    assert tokens.derive_token(KEY_A, "p", "ab", "c") != tokens.derive_token(KEY_A, "p", "a", "bc")


def test_room_token_is_url_safe_and_long_enough():
    for room_id in ("r", tokens.new_room_id(), "é/?&#%", "x" * 1000):
        token = tokens.room_token(KEY_A, room_id)
        assert URL_SAFE.match(token), token
        assert len(token) >= 22  # 22 base64url characters carry 132 bits
        assert "=" not in token


def test_new_room_id_is_random_hex():
    ids = {tokens.new_room_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


def test_hash_token_is_sha256_hex():
    token = tokens.room_token(KEY_A, "room-1")
    assert tokens.hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert re.fullmatch(r"[0-9a-f]{64}", tokens.hash_token(token))
    assert tokens.hash_token(token) != token
    assert tokens.hash_token("a") != tokens.hash_token("b")


def test_hash_token_accepts_any_text_from_a_url():
    assert len(tokens.hash_token("\udcff broken")) == 64


def test_key_file_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "data" / "secret.key"
    key = tokens.load_or_create_key(path)
    assert len(key) == 32
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert tokens.load_or_create_key(path) == key


def test_new_keys_differ(tmp_path):
    assert tokens.load_or_create_key(tmp_path / "a") != tokens.load_or_create_key(tmp_path / "b")


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_wrong_size_key_file_is_refused(tmp_path, size):
    path = tmp_path / "secret.key"
    path.write_bytes(b"k" * size)
    with pytest.raises(RuntimeError, match="32-byte key"):
        tokens.load_or_create_key(path)
    assert path.read_bytes() == b"k" * size  # never overwritten


def test_same_key_gives_same_links_after_restart(tmp_path):
    path = tmp_path / "secret.key"
    before = tokens.room_token(tokens.load_or_create_key(path), "room-1")
    after = tokens.room_token(tokens.load_or_create_key(path), "room-1")
    assert before == after
