"""Radicale auth plugin over the local accounts store (`[auth] type = caldav_plugin.auth`).

Argon2 is slow on purpose, so a verified login is remembered for a short while
(as Radicale's own `cache_logins` does for htpasswd); the account's state is
still read on every request, so disabling someone takes effect at once.
Failed logins are never cached and Radicale delays them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from radicale import auth, config

from caldav_plugin import services
from visio_core import tokens

CACHE_SECONDS = 60.0
_SALT = secrets.token_bytes(16)


def _digest(login: str, password: str) -> bytes:
    return hashlib.sha256(_SALT + login.encode() + b"\0" + password.encode()).digest()


class Auth(auth.BaseAuth):
    def __init__(self, configuration: config.Configuration) -> None:
        super().__init__(configuration)
        self._verified: dict[str, tuple[bytes, float]] = {}
        self._cache_lock = threading.Lock()

    def _login(self, login: str, password: str) -> str:
        if not login or not password:
            return ""
        svc = services.get()
        if tokens.check_service_password(svc.key, login, password, time.time()):
            account = svc.accounts.get(login)  # the portal, acting for a signed-in user
            return login if account is not None and not account.disabled else ""
        accounts = svc.accounts
        digest = _digest(login, password)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._verified.get(login)
        if cached and cached[1] > now and hmac.compare_digest(cached[0], digest):
            account = accounts.get(login)
            return login if account is not None and not account.disabled else ""
        account = accounts.verify(login, password)
        if account is None:
            with self._cache_lock:
                self._verified.pop(login, None)
            return ""
        with self._cache_lock:
            self._verified[login] = (digest, now + CACHE_SECONDS)
        return account.login
