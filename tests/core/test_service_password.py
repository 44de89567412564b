"""The short-lived CalDAV password the portal uses to act for a signed-in user."""

from visio_core import tokens

KEY = b"k" * 32
OTHER = b"o" * 32


def test_valid_for_its_login_until_it_expires() -> None:
    pw = tokens.service_password(KEY, "alice", now=1000, ttl=300)
    assert tokens.check_service_password(KEY, "alice", pw, now=1299)
    assert not tokens.check_service_password(KEY, "alice", pw, now=1301)


def test_bound_to_login_and_key() -> None:
    pw = tokens.service_password(KEY, "alice", now=1000)
    assert not tokens.check_service_password(KEY, "bob", pw, now=1000)
    assert not tokens.check_service_password(OTHER, "alice", pw, now=1000)


def test_tampered_or_foreign_passwords_refused() -> None:
    pw = tokens.service_password(KEY, "alice", now=1000)
    prefix, expires, sig = pw.split(":")
    longer = f"{prefix}:{int(expires) + 10_000}:{sig}"
    assert not tokens.check_service_password(KEY, "alice", longer, now=1000)
    assert not tokens.check_service_password(KEY, "alice", "hunter22", now=1000)
    assert not tokens.check_service_password(KEY, "alice", "visio-service:abc:def", now=1000)


def test_rsvp_token_carries_its_subject_and_is_signed() -> None:
    token = tokens.rsvp_token(KEY, "alice", "uid-1@example.org", "Bob@Example.org")
    assert tokens.read_rsvp_token(KEY, token) == ("alice", "uid-1@example.org", "bob@example.org")
    assert tokens.read_rsvp_token(OTHER, token) is None
    payload, sig = token.split(".")
    forged = tokens.rsvp_token(KEY, "mallory", "x", "y").split(".")[0] + "." + sig
    assert tokens.read_rsvp_token(KEY, forged) is None
    assert tokens.read_rsvp_token(KEY, "garbage") is None
    assert tokens.read_rsvp_token(KEY, payload + ".") is None
