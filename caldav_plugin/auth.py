"""Radicale auth plugin over the local accounts store (`[auth] type = caldav_plugin.auth`).

Passwords are checked with Argon2 (visio_core.accounts); the throttle, the bound
on checks at once, caching and the portal's service passwords are shared with the
LDAP plugin (caldav_plugin.login).
"""

from __future__ import annotations

from caldav_plugin import services
from caldav_plugin.login import CachedLogin


class Auth(CachedLogin):
    cache_seconds = 60.0

    def _verify(self, login: str, password: str) -> str:
        account = services.get().accounts.verify(login, password)
        return account.login if account is not None else ""
