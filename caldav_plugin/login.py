"""What both auth plugins share: the portal's service passwords and a short login cache.

Argon2 and LDAP binds are slow on purpose, so a verified login is remembered
for a short while (as Radicale's own `cache_logins` does); the account's state
is read on every request, so disabling someone takes effect at once. Failed
logins are never cached, and Radicale delays them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from typing import ClassVar

from radicale import auth, config

from caldav_plugin import services
from visio_core import tokens

_SALT = secrets.token_bytes(16)


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

    def _verify(self, login: str, password: str) -> str:
        """The account's login when the password is right, else ""."""
        raise NotImplementedError

    def _may_log_in(self, login: str) -> bool:
        account = services.get().accounts.get(login)
        if account is None:
            return self.unknown_account_may_log_in
        return not account.disabled

    def _login(self, login: str, password: str) -> str:
        if not login or not password:
            return ""  # an empty password never reaches a password check
        key = services.get().key
        if tokens.check_service_password(key, login, password, time.time()):
            # The portal, acting for a signed-in user.
            return login if services.get().accounts.get(login) and self._may_log_in(login) else ""
        digest = _digest(login, password)
        now = time.monotonic()
        with self._cache_lock:
            cached = self._verified.get(login)
        if cached and cached[2] > now and hmac.compare_digest(cached[0], digest):
            return cached[1] if self._may_log_in(cached[1]) else ""
        user = self._verify(login, password)
        if not user or not self._may_log_in(user):
            with self._cache_lock:
                self._verified.pop(login, None)
            return ""
        with self._cache_lock:
            self._verified[login] = (digest, user, now + self.cache_seconds)
        return user
