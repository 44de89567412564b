"""What both auth plugins share: the one place passwords are checked, its throttle, the
portal's service passwords and a short login cache.

Every password anyone types reaches this class: calendar apps directly, the
portal's sign-in and the room's sign-in through a CalDAV request made by the
backend (which vouches for the person's address, visio_core/client_address.py).
So one throttle (visio_core/throttle.py) sees them all: failures counted per
login and per address, lockouts answered like a wrong password (Radicale then
waits `[auth] delay` after either), and a bounded number of Argon2 checks or
directory binds at once (past it: 503 "busy" with Retry-After).

Argon2 and LDAP binds are slow on purpose, so a verified login is remembered
for a short while (as Radicale's own `cache_logins` does); the account's state
is read on every request, so disabling someone takes effect at once. Failed
logins are never cached.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
import threading
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ClassVar

from radicale import auth, config

from caldav_plugin import services
from visio_core import client_address, tokens
from visio_core.throttle import Slots, Throttle, mask

log = logging.getLogger("visio.caldav.login")
_SALT = secrets.token_bytes(16)


class LoginUnavailable(Exception):
    """Passwords cannot be checked now; the server answers 503 with Retry-After, not 401."""

    reason: ClassVar[str] = "unavailable"
    retry_after: ClassVar[int] = 60
    text: ClassVar[str] = "The account directory is unreachable; try again in a minute.\n"


class LoginBusy(LoginUnavailable):
    """Every password-check slot stayed taken for the whole wait."""

    reason = "busy"
    retry_after = 5
    text = "Too many sign-ins at this moment; try again in a few seconds.\n"


@dataclass(frozen=True)
class Caller:
    """What the throttle needs of the HTTP request (set by caldav_plugin.app per request)."""

    peer: str
    forwarded: str = ""  # X-Forwarded-For
    vouch: str = ""  # X-Visio-Client


current_caller: ContextVar[Caller | None] = ContextVar("visio_login_caller", default=None)

# Radicale's own line names the login as typed; ours (with the client's address) masks it.
_RADICALE_FAILED = "Failed login attempt from %s: %r (%s)"


class _MaskRadicaleFailures(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.msg == _RADICALE_FAILED and isinstance(args, tuple) and len(args) == 3:
            record.args = (args[0], mask(str(args[1])), args[2])
        return True


_MASK = _MaskRadicaleFailures()


def _digest(login: str, password: str) -> bytes:
    return hashlib.sha256(_SALT + login.encode() + b"\0" + password.encode()).digest()


class CachedLogin(auth.BaseAuth):
    cache_seconds: ClassVar[float] = 60.0
    # A directory login may precede the first sync: no account row yet is fine there.
    unknown_account_may_log_in: ClassVar[bool] = False

    def __init__(self, configuration: config.Configuration) -> None:
        super().__init__(configuration)
        self._verified: dict[str, tuple[bytes, str, float]] = {}
        self._cache_lock = threading.Lock()
        policy = services.get().settings.throttle
        self._throttle = Throttle(policy)
        self._slots = Slots(policy)
        logging.getLogger("radicale").addFilter(_MASK)  # the same object: added once

    def _verify(self, login: str, password: str) -> str:
        """The account's login when the password is right, else ""."""
        raise NotImplementedError

    def _may_log_in(self, login: str) -> bool:
        account = services.get().accounts.get(login)
        if account is None:
            return self.unknown_account_may_log_in
        return not account.disabled

    def _caller(self, login: str, context: auth.AuthContext | None) -> tuple[str, str]:
        """(client address, surface): the backend's vouch if it verifies, else the peer."""
        caller = current_caller.get()
        if caller is None:
            return (getattr(context, "remote_addr", None) or "unknown"), "caldav"
        if caller.vouch:
            found = client_address.read_vouch(services.get().key, caller.vouch, login, time.time())
            if found is not None:
                return found
            log.warning("%s from %s does not verify: ignored", client_address.HEADER, caller.peer)
        proxies = services.get().settings.limits.trusted_proxies
        return client_address.forwarded_client(caller.peer, caller.forwarded, proxies), "caldav"

    def _login_ext(self, login: str, password: str, context: auth.AuthContext) -> str:
        address, via = self._caller(login, context)
        return self._check(login, password, address, via)

    def _login(self, login: str, password: str) -> str:
        address, via = self._caller(login, None)
        return self._check(login, password, address, via)

    def _check(self, login: str, password: str, address: str, via: str) -> str:
        if not login or not password:
            return ""  # an empty password never reaches a password check
        key = services.get().key
        if tokens.check_service_password(key, login, password, time.time()):
            # The portal, acting for a signed-in user: a signature, not a password.
            return login if services.get().accounts.get(login) and self._may_log_in(login) else ""
        left = self._throttle.locked(login, address, time.monotonic())
        if left > 0:
            # Answered as a wrong password (and delayed as one by Radicale): no oracle.
            log.warning(
                "password of %s from %s (%s) not checked: locked out for %d s more",
                mask(login),
                address,
                via,
                math.ceil(left),
            )
            return ""
        digest = _digest(login, password)
        with self._cache_lock:
            cached = self._verified.get(login)
        if cached and cached[2] > time.monotonic() and hmac.compare_digest(cached[0], digest):
            if self._may_log_in(cached[1]):
                self._throttle.succeeded(login, address, time.monotonic())
                return cached[1]
            return self._failed(login, address, via)
        if not self._slots.acquire():
            log.warning(
                "password of %s from %s (%s) not checked: all %d check slots taken (busy)",
                mask(login),
                address,
                via,
                self._throttle.policy.checks_at_once,
            )
            raise LoginBusy()
        try:
            user = self._verify(login, password)
            ok = bool(user) and self._may_log_in(user)
        finally:
            self._slots.release()
        if not ok:
            return self._failed(login, address, via)
        with self._cache_lock:
            self._verified[login] = (digest, user, time.monotonic() + self.cache_seconds)
        self._throttle.succeeded(login, address, time.monotonic())
        return user

    def _failed(self, login: str, address: str, via: str) -> str:
        with self._cache_lock:
            self._verified.pop(login, None)
        policy = self._throttle.policy
        failure = self._throttle.failed(login, address, time.monotonic())
        log.warning(
            "password refused for %s from %s (%s): %d of %d for this login, %d of %d from there",
            mask(login),
            address,
            via,
            failure.login_failures,
            policy.login_max_failures,
            failure.address_failures,
            policy.address_max_failures,
        )
        seconds = math.ceil(policy.lockout)
        if failure.locked_login:
            log.warning(
                "login %s locked out for %d s after %d refused passwords (the last from %s)",
                mask(login),
                seconds,
                failure.login_failures,
                address,
            )
        if failure.locked_address:
            log.warning(
                "address %s locked out for %d s after %d refused passwords",
                address,
                seconds,
                failure.address_failures,
            )
        return ""
