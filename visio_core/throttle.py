"""The one throttle every password check goes through: failures counted, lockouts, a bounded number
of checks at once.

Failures are counted per login and per client address in a sliding window;
reaching the limit locks that login (from everywhere) or that address (for
every login) for the lockout time. A locked login or address is answered
exactly like a wrong password by the caller, so the lock tells nothing. A
successful check clears the failures of that login *from that address* only:
clearing them all would let a calendar app polling with the right password
reset an attacker's count elsewhere every minute.

Pure and thread-safe: time is passed in. The state lives in the memory of the
one process that checks passwords (the CalDAV server); several nodes would
need it shared (Redis).
"""

from __future__ import annotations

import ipaddress
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

# setting name -> (environment variable, default)
OPTIONS: dict[str, tuple[str, str]] = {
    "login_max_failures": ("VISIO_LOGIN_MAX_FAILURES", "10"),
    "address_max_failures": ("VISIO_ADDRESS_MAX_FAILURES", "50"),
    "login_failure_window": ("VISIO_LOGIN_FAILURE_WINDOW", "900"),
    "login_lockout": ("VISIO_LOGIN_LOCKOUT", "900"),
    "password_checks_at_once": ("VISIO_PASSWORD_CHECKS_AT_ONCE", "4"),
    "password_check_wait": ("VISIO_PASSWORD_CHECK_WAIT", "3"),
}

SWEEP_EVERY = 60.0  # seconds between sweeps of keys whose failures and locks have all expired


class ThrottleError(ValueError):
    """A throttle setting has a value the product cannot use."""


@dataclass(frozen=True)
class Policy:
    login_max_failures: int = 10  # wrong passwords for one login within the window
    address_max_failures: int = 50  # wrong passwords from one address within the window
    window: float = 900.0  # seconds over which failures are counted
    lockout: float = 900.0  # seconds a login or address stays locked
    checks_at_once: int = 4  # password hashes (Argon2) or directory binds running at once
    check_wait: float = 3.0  # seconds a check may wait for a slot; then "busy, try again"


def _whole(value: str, variable: str, minimum: int) -> int:
    try:
        number = int(value.strip())
    except ValueError as e:
        raise ThrottleError(f"{variable} must be a whole number (got {value!r})") from e
    if number < minimum:
        raise ThrottleError(f"{variable} must be at least {minimum} (got {number})")
    return number


def parse(raw: Mapping[str, str]) -> Policy:
    """A Policy from the resolved raw values (keys of OPTIONS)."""
    env = {name: variable for name, (variable, _) in OPTIONS.items()}
    return Policy(
        login_max_failures=_whole(raw["login_max_failures"], env["login_max_failures"], 1),
        address_max_failures=_whole(raw["address_max_failures"], env["address_max_failures"], 1),
        window=_whole(raw["login_failure_window"], env["login_failure_window"], 1),
        lockout=_whole(raw["login_lockout"], env["login_lockout"], 1),
        checks_at_once=_whole(raw["password_checks_at_once"], env["password_checks_at_once"], 1),
        check_wait=_whole(raw["password_check_wait"], env["password_check_wait"], 0),
    )


def mask(login: str) -> str:
    """A login as logs show it: "jean.dupont" -> "j…t". Enough to tell an attack on one
    person from noise, without writing down what people typed (sometimes a password)."""
    if len(login) <= 2:
        return login[:1] + "…"
    return f"{login[0]}…{login[-1]}"


def address_key(address: str) -> str:
    """What the per-address count is kept under: an IPv6 client owns a whole /64."""
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return address.strip() or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def login_key(login: str) -> str:
    return login.strip().casefold()


@dataclass(frozen=True)
class Failure:
    """What one failure did: the counts after it and whether it locked anything."""

    login_failures: int
    address_failures: int
    locked_login: bool
    locked_address: bool


@dataclass
class _Counts:
    failures: deque[tuple[float, str]] = field(default_factory=deque)  # (when, address key)
    locked_until: float = 0.0


class Throttle:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self._lock = threading.Lock()
        self._logins: dict[str, _Counts] = {}
        self._addresses: dict[str, _Counts] = {}
        self._swept = 0.0

    def _prune(self, counts: _Counts, now: float) -> None:
        while counts.failures and counts.failures[0][0] <= now - self.policy.window:
            counts.failures.popleft()

    def _sweep(self, now: float) -> None:
        """Forget keys with nothing left to remember: memory stays bounded by recent failures."""
        if now - self._swept < SWEEP_EVERY:
            return
        self._swept = now
        for table in (self._logins, self._addresses):
            for key in list(table):
                counts = table[key]
                self._prune(counts, now)
                if not counts.failures and counts.locked_until <= now:
                    del table[key]

    def locked(self, login: str, address: str, now: float) -> float:
        """Seconds left on the lock of this login or this address (0: not locked)."""
        with self._lock:
            login_counts = self._logins.get(login_key(login))
            address_counts = self._addresses.get(address_key(address))
            until = max(
                login_counts.locked_until if login_counts else 0.0,
                address_counts.locked_until if address_counts else 0.0,
            )
        return max(0.0, until - now)

    def failed(self, login: str, address: str, now: float) -> Failure:
        """Count one wrong password; lock the login or the address when it reaches its limit.
        The count starts again after a lockout."""
        where = address_key(address)
        with self._lock:
            self._sweep(now)
            by_login = self._logins.setdefault(login_key(login), _Counts())
            by_address = self._addresses.setdefault(where, _Counts())
            locks = []
            for counts, limit in (
                (by_login, self.policy.login_max_failures),
                (by_address, self.policy.address_max_failures),
            ):
                self._prune(counts, now)
                counts.failures.append((now, where))
                reached = len(counts.failures) >= limit
                locks.append(reached)
                if reached:
                    counts.locked_until = now + self.policy.lockout
            result = Failure(len(by_login.failures), len(by_address.failures), locks[0], locks[1])
            for counts, reached in ((by_login, locks[0]), (by_address, locks[1])):
                if reached:
                    counts.failures.clear()
            return result

    def succeeded(self, login: str, address: str, now: float) -> None:
        """The right password from `address`: that address's failures for this login are
        forgotten (the address's own count is not: one valid account must not reset it)."""
        where = address_key(address)
        with self._lock:
            counts = self._logins.get(login_key(login))
            if counts is None:
                return
            counts.failures = deque(f for f in counts.failures if f[1] != where)
            self._prune(counts, now)
            if not counts.failures and counts.locked_until <= now:
                del self._logins[login_key(login)]


class Slots:
    """At most `checks_at_once` password checks run at once; a check that cannot get a slot
    within `check_wait` seconds is refused ("busy"), so bulk guessing cannot pile up Argon2
    work or directory binds behind each other."""

    def __init__(self, policy: Policy) -> None:
        self._semaphore = threading.BoundedSemaphore(policy.checks_at_once)
        self._wait = policy.check_wait

    def acquire(self) -> bool:
        if self._wait <= 0:
            return self._semaphore.acquire(blocking=False)
        return self._semaphore.acquire(timeout=self._wait)

    def release(self) -> None:
        self._semaphore.release()
