"""Who a request comes from, and how many signalling sockets each address holds.

Used by the front (it sees every socket of the node and caps them per address)
and by the media workers (the same cap, on the address the front vouches for).
"""

from __future__ import annotations

import ipaddress
from collections import Counter

from aiohttp import web

from visio_core.limits import Network


class AddressSockets:
    """Open signalling sockets per client address, capped."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def acquire(self, address: str, cap: int) -> bool:
        if self.open[address] >= cap:
            return False
        self.open[address] += 1
        return True

    def release(self, address: str) -> None:
        self.open[address] -= 1
        if self.open[address] <= 0:
            del self.open[address]


def _trusted(address: str, proxies: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(request: web.Request, proxies: tuple[Network, ...]) -> str:
    """The client's address: the peer's, or, from a trusted proxy, the nearest
    untrusted hop of X-Forwarded-For (the right-most ones were added by our proxies)."""
    address = request.remote or ""
    if not _trusted(address, proxies):
        return address
    hops = [h.strip() for h in ",".join(request.headers.getall("X-Forwarded-For", [])).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # a forged, unreadable hop: count it as the proxy itself
        address = hop
    return address
