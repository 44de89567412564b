"""ICE consent freshness (RFC 7675) that a busy event loop does not turn into hang-ups.

aioice 0.13 checks consent every ~5 s with one binding request, sent once and
given 0.5 s, and closes the connection after 6 such misses in a row. The answer
is read by our own event loop, one datagram per socket per loop turn (asyncio's
datagram transport), behind whatever media queued on that socket meanwhile. On
an overloaded media worker (bench/overload.py: two rooms of 50 on one worker,
its loop 0.1-0.2 s late on average) answers on the sockets of watched publishers
came up to 28 s after their request; aioice counted them as missing, and 30 s
into the overload the worker hung up on those publishers: their cameras stopped
for everyone who watched them, the worker's CPU fell, and nobody was told.

RFC 7675 asks for something else: consent expires when no answer to any check
came for 30 seconds. Here each check is its own transaction, retransmitted for
31.5 s, so an answer read late still counts; the connection closes only when a
check got no answer in that time and no answer to any check has come for
CONSENT_TIMEOUT. A peer that is really gone is let go after about 40 s (aioice:
about 30). `install()` replaces `aioice.ice.Connection.query_consent` for aioice
0.13.0 (the version whose internals this was written against); another version
keeps aioice's own check, with a warning.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import aioice
import aioice.ice
from aioice import stun

log = logging.getLogger("visio.sfu")

SUPPORTED_AIOICE = "0.13.0"
CONSENT_INTERVAL = 5.0  # s between checks, randomised by +/- 20 % as RFC 7675 asks
CONSENT_TIMEOUT = 30.0  # s without any answer: consent expired (RFC 7675 section 5.1)
# A check is retransmitted after 0.5, 1, 2, 4, 8 s and given 16 s more: an answer up
# to 31.5 s late still counts (seen: 17 s), and several checks are always under way.
RETRANSMISSIONS = 5
_CONNECTION: Any = aioice.ice.Connection
_STOCK_QUERY_CONSENT = _CONNECTION.query_consent
_warned: list[bool] = []  # install() runs for every client: say it once


class _Freshness:
    """When the peer last answered, and whether consent has run out."""

    def __init__(self, now: float) -> None:
        self.answered = now
        self.expired = False
        self.silent = 0.0  # s without an answer when it expired


async def _check(connection: Any, pair: Any, key: bytes, fresh: _Freshness) -> None:
    loop = asyncio.get_running_loop()
    request = connection.build_request(pair, nominate=False)
    try:
        await pair.protocol.request(
            request, pair.remote_addr, integrity_key=key, retransmissions=RETRANSMISSIONS
        )
    except stun.TransactionError:
        # Given its whole retransmission time: if nothing else was answered lately
        # either, the peer is gone (or refuses: an error answer, after an ICE restart).
        silent = loop.time() - fresh.answered
        if silent > CONSENT_TIMEOUT:
            fresh.expired, fresh.silent = True, silent
        return
    except Exception:  # the socket closing under a check: the connection is closing
        log.debug("consent check not sent", exc_info=True)
        return
    fresh.answered = max(fresh.answered, loop.time())
    fresh.expired = False  # an answer before the loop saw the expiry: the peer is there


async def query_consent(connection: Any) -> None:
    """`Connection.query_consent`, run by aioice once the connection is up."""
    assert connection.remote_password is not None
    loop = asyncio.get_running_loop()
    key = connection.remote_password.encode("utf8")
    fresh = _Freshness(loop.time())
    checks: set[asyncio.Task[None]] = set()
    try:
        while not fresh.expired:
            jitter = random.random()  # noqa: S311 - spreads checks in time, no secret
            await asyncio.sleep(CONSENT_INTERVAL * (0.8 + 0.4 * jitter))
            if fresh.expired:
                break
            for pair in list(connection._nominated.values()):
                task = loop.create_task(_check(connection, pair, key, fresh))
                checks.add(task)
                task.add_done_callback(checks.discard)
    finally:
        for task in list(checks):
            task.cancel()
    log.info(
        "ICE consent expired: no answer from %s for %.0f s; closing that connection",
        ", ".join(f"{p.remote_addr[0]}:{p.remote_addr[1]}" for p in connection._nominated.values())
        or "the peer",
        fresh.silent,
    )
    connection._query_consent_task = None  # close() must not wait for this very task
    await connection.close()


def install() -> None:
    """Put the tolerant check in place (idempotent); before any connection comes up."""
    if aioice.__version__ != SUPPORTED_AIOICE:
        if not _warned:
            _warned.append(True)
            log.warning(
                "aioice %s, not %s: its own consent check is kept (it hangs up on peers"
                " whose answers a busy event loop reads late)",
                aioice.__version__,
                SUPPORTED_AIOICE,
            )
        return
    _CONNECTION.query_consent = query_consent
