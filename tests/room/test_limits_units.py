"""The signalling limits' pure parts: settings parsing and the token bucket."""

from __future__ import annotations

import pytest

from visio_core.limits import Rate, SignalLimits
from visio_core.settings import SettingsError, resolve
from visio_rooms.limits import MessageLimiter, TokenBucket


def test_limits_are_settings_with_defaults() -> None:
    limits = resolve({}, {}).limits
    assert limits == SignalLimits()
    assert (limits.lobby_max_knocks, limits.chat_max_length, limits.sockets_per_address) == (
        20,
        1000,
        20,
    )
    chosen = resolve({"rate_chat": "3/1"}, {"VISIO_LOBBY_MAX_KNOCKS": "5"}).limits
    assert chosen.rate_chat == Rate(3, 1.0) and chosen.lobby_max_knocks == 5


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("VISIO_RATE_CHAT", "ten"),
        ("VISIO_RATE_HAND", "5"),
        ("VISIO_RATE_OTHER", "0/10"),
        ("VISIO_RATE_REACTION", "5/0"),
        ("VISIO_LOBBY_MAX_KNOCKS", "0"),
        ("VISIO_JOIN_TIMEOUT", "soon"),
        ("VISIO_TRUSTED_PROXIES", "the proxy"),
    ],
)
def test_unusable_limits_are_refused_with_their_name(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        resolve({}, {variable: value})


def test_a_bucket_takes_its_burst_then_its_rate() -> None:
    bucket = TokenBucket(Rate(3, 3.0))  # 3 at once, then one a second
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.wait() == pytest.approx(1.0)
    assert not bucket.take(0.5)
    assert bucket.take(1.0)
    assert bucket.take(100.0) and bucket.take(100.0) and bucket.take(100.0)
    assert not bucket.take(100.0)  # refilled to the burst, never beyond


def test_a_flood_is_told_once_a_second_per_bucket() -> None:
    limiter = MessageLimiter(SignalLimits(rate_chat=Rate(2, 10.0)))
    answers = [limiter.allow("chat", 0.01 * i) for i in range(100)]
    assert [a for a, _, _ in answers].count(True) == 2
    assert [t for _, _, t in answers].count(True) == 1
    assert limiter.allow("media", 0.5)[:2] == (True, "other")  # other buckets untouched
    assert limiter.allow("chat", 1.5)[2] is True  # a second later: told again
