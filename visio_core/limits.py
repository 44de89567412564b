"""Limits of the room signalling (lobby, sockets, message rates), as settings.

Parsed like the other settings (`[visio]` in radicale.conf, each overridden by
its VISIO_* variable); `visio_core.settings` folds OPTIONS into its own table.
The README's "Limits" table lists them with these defaults.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# setting name -> (environment variable, default)
OPTIONS: dict[str, tuple[str, str]] = {
    "lobby_max_knocks": ("VISIO_LOBBY_MAX_KNOCKS", "20"),
    "refusal_cooldown": ("VISIO_REFUSAL_COOLDOWN", "60"),
    "chat_max_length": ("VISIO_CHAT_MAX_LENGTH", "1000"),
    "rate_chat": ("VISIO_RATE_CHAT", "10/10"),
    "rate_reaction": ("VISIO_RATE_REACTION", "10/5"),
    "rate_hand": ("VISIO_RATE_HAND", "6/10"),
    "rate_other": ("VISIO_RATE_OTHER", "60/10"),
    "join_timeout": ("VISIO_JOIN_TIMEOUT", "15"),
    "sockets_per_address": ("VISIO_SOCKETS_PER_ADDRESS", "20"),
    "trusted_proxies": ("VISIO_TRUSTED_PROXIES", "127.0.0.1, ::1"),
}


class LimitError(ValueError):
    """A limit has a value the product cannot use (a SettingsError for the caller)."""


@dataclass(frozen=True)
class Rate:
    """A token bucket: `burst` messages at once, refilled at `burst` per `seconds`."""

    burst: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.burst / self.seconds


def _default_proxies() -> tuple[Network, ...]:
    return (ipaddress.ip_network("127.0.0.1/32"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class SignalLimits:
    lobby_max_knocks: int = 20  # people knocking at one room at once
    refusal_cooldown: float = 60.0  # seconds before a refused address / link may knock again
    chat_max_length: int = 1000  # characters of one chat message
    rate_chat: Rate = Rate(10, 10.0)
    rate_reaction: Rate = Rate(10, 5.0)
    rate_hand: Rate = Rate(6, 10.0)
    rate_other: Rate = Rate(60, 10.0)
    join_timeout: float = 15.0  # seconds a socket may stay open without sending `join`
    sockets_per_address: int = 20  # open signalling sockets from one client address
    # Peers whose X-Forwarded-For names the client (a reverse proxy on this host).
    trusted_proxies: tuple[Network, ...] = field(default_factory=_default_proxies)


def _whole(value: str, variable: str, minimum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError as e:
        raise LimitError(f"{variable} must be a whole number (got {value!r})") from e
    if number < minimum:
        raise LimitError(f"{variable} must be at least {minimum} (got {number})")
    return number


def _rate(value: str, variable: str) -> Rate:
    problem = f"{variable} must look like COUNT/SECONDS, e.g. 10/10 (got {value!r})"
    burst, sep, seconds = value.partition("/")
    try:
        rate = Rate(int(burst.strip()), float(seconds.strip()))
    except ValueError as e:
        raise LimitError(problem) from e
    if not sep or rate.burst < 1 or not rate.seconds > 0:
        raise LimitError(problem)
    return rate


def _networks(value: str, variable: str) -> tuple[Network, ...]:
    try:
        return tuple(
            ipaddress.ip_network(v.strip(), strict=False) for v in value.split(",") if v.strip()
        )
    except ValueError as e:
        raise LimitError(f"{variable} must list addresses or networks (got {value!r})") from e


def parse(raw: Mapping[str, str]) -> SignalLimits:
    """SignalLimits from the resolved raw values (keys of OPTIONS)."""
    env = {name: variable for name, (variable, _) in OPTIONS.items()}
    return SignalLimits(
        lobby_max_knocks=_whole(raw["lobby_max_knocks"], env["lobby_max_knocks"], 1),
        refusal_cooldown=_whole(raw["refusal_cooldown"], env["refusal_cooldown"], 0),
        chat_max_length=_whole(raw["chat_max_length"], env["chat_max_length"], 1),
        rate_chat=_rate(raw["rate_chat"], env["rate_chat"]),
        rate_reaction=_rate(raw["rate_reaction"], env["rate_reaction"]),
        rate_hand=_rate(raw["rate_hand"], env["rate_hand"]),
        rate_other=_rate(raw["rate_other"], env["rate_other"]),
        join_timeout=_whole(raw["join_timeout"], env["join_timeout"], 1),
        sockets_per_address=_whole(raw["sockets_per_address"], env["sockets_per_address"], 1),
        trusted_proxies=_networks(raw["trusted_proxies"], env["trusted_proxies"]),
    )
