"""Radicale auth plugin for directory accounts (`[auth] type = caldav_plugin.ldap_auth`).

Why not Radicale's own `[auth] type = ldap` (read in 3.9): it leaves ldap3 to
chase referrals (auto_referrals defaults to on), relies on ldap3 alone to stop
an empty password, turns an unreachable directory into an exception that the
client sees as 500, and answers "wrong password" when the directory drops
during the person's bind. Its options would also duplicate our VISIO_LDAP_*.
This plugin keeps Radicale's auth framework (BaseAuth: failed-login delay,
user name checks) and does the directory part with ldap_sync.directory, the
client the sync uses, so both see the directory the same way.

The password check is the directory's (a bind as the person, so disabled or
deleted entries fail at once); the accounts store adds the product's own
state: an account the sync or an administrator disabled cannot log in either.
A verified login is remembered for CACHE_SECONDS (as Radicale's cache_logins
does for LDAP) so a client's burst of requests costs one bind; binds go through
the same throttle and bounded concurrency as local passwords (caldav_plugin.login).
"""

from __future__ import annotations

import logging

from radicale import config

from caldav_plugin import services
from caldav_plugin.login import CachedLogin, LoginUnavailable
from ldap_sync.directory import Directory, DirectoryConfig, DirectoryError
from visio_core.throttle import mask

log = logging.getLogger("visio.caldav.ldap")
CACHE_SECONDS = 15.0
__all__ = ["Auth", "LoginUnavailable"]  # LoginUnavailable: the directory is down (503)


class Auth(CachedLogin):
    cache_seconds = CACHE_SECONDS
    unknown_account_may_log_in = True

    def __init__(self, configuration: config.Configuration) -> None:
        super().__init__(configuration)
        self._directory: Directory | None = None
        self._config_error = ""
        try:
            self._directory = Directory(DirectoryConfig.from_settings(services.get().settings))
        except DirectoryError as e:
            # Start anyway (the server still answers, with 503) and say why, loudly.
            self._config_error = str(e)
            log.error("LDAP logins are impossible: %s", e)

    def _verify(self, login: str, password: str) -> str:
        if self._directory is None:
            raise LoginUnavailable(self._config_error)
        try:
            user = self._directory.authenticate(login, password)
        except DirectoryError as e:
            log.error("LDAP directory unavailable, login of %s answered 503: %s", mask(login), e)
            raise LoginUnavailable(str(e)) from None
        if user is None:
            return ""
        if not self._may_log_in(user.login):
            log.info("login of %r refused: account %s is disabled", login, user.login)
            return ""
        return user.login
