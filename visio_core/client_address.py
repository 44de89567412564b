"""Whose password check it is: the client's address, as the password throttle counts it.

The backend calls the CalDAV server from 127.0.0.1 on behalf of people (the
portal's sign-in, the room's sign-in). It names the person's address in the
X-Visio-Client header, signed under the server key and bound to the login and
to the next minute; the CalDAV server believes the header only when that
signature verifies. Without it: the peer's address, or behind a trusted
reverse proxy the nearest untrusted hop of X-Forwarded-For (as
visio_rooms.limits reads it for the backend's own requests).
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Iterable

from visio_core import tokens
from visio_core.limits import Network

HEADER = "X-Visio-Client"
TTL = 60  # seconds a vouch is good for: it travels over loopback, at once


def vouch(key: bytes, address: str, via: str, login: str, now: float) -> str:
    """The header value: "address via expires signature"."""
    expires = str(int(now) + TTL)
    signature = tokens.derive_token(key, "client-address", address, via, login, expires)
    return f"{address} {via} {expires} {signature}"


def read_vouch(key: bytes, value: str, login: str, now: float) -> tuple[str, str] | None:
    """(address, via) of a genuine, fresh vouch for `login`, else None."""
    parts = value.split()
    if len(parts) != 4 or len(value) > 300:
        return None
    address, via, expires, signature = parts
    if not expires.isdigit() or int(expires) < now:
        return None
    expected = tokens.derive_token(key, "client-address", address, via, login, expires)
    if not hmac.compare_digest(signature, expected):
        return None
    return address, via


def _trusted(address: str, proxies: Iterable[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def forwarded_client(peer: str, forwarded: str, proxies: tuple[Network, ...]) -> str:
    """The peer, or from a trusted proxy the nearest untrusted X-Forwarded-For hop
    (the right-most hops were added by our own proxies)."""
    address = peer
    if not _trusted(address, proxies):
        return address
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # an unreadable hop: count it as the proxy itself
        address = hop
    return address
