"""A password typed into the backend (the portal's sign-in, the room's) is checked by the
CalDAV server, like a calendar app's.

The CalDAV server is the one place passwords are checked (caldav_plugin.login):
one throttle sees every surface, failures wait Radicale's `[auth] delay`, and
local and LDAP accounts both work. The person's address travels with the
check, vouched under the server key, so the throttle counts the person.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from conference_backend import keys
from conference_backend.portal.caldav_client import Busy, CalDavError, DirectoryDown
from conference_backend.portal.session import PORTAL
from visio_core.accounts import Account

log = logging.getLogger("visio.passwords")
REFUSALS = ("bad-credentials", "busy")  # what a room's page is told as is; else "unavailable"


@dataclass(frozen=True)
class SignIn:
    account: Account | None  # None: refused, see `refusal`
    refusal: str = ""  # "bad-credentials", "busy", "directory-down", "server-down"
    retry_after: int = 0  # seconds, with "busy"


async def check_password(
    app: web.Application, login: str, password: str, address: str, via: str
) -> SignIn:
    """The enabled account these credentials open, or why not. A locked login or
    address is refused as "bad-credentials", exactly like a wrong password."""
    caldav = app[PORTAL].caldav
    if caldav is None:  # only between the app's start and its CalDAV client's
        return SignIn(None, "server-down")
    try:
        ok = await caldav.authenticate(login, password, client=address, via=via)
    except Busy as e:
        return SignIn(None, "busy", e.retry_after)
    except DirectoryDown:
        return SignIn(None, "directory-down")
    except (CalDavError, OSError, TimeoutError) as e:
        log.warning("a %s sign-in could not reach the CalDAV server: %s", via, e)
        return SignIn(None, "server-down")
    account = app[keys.ACCOUNTS].get(login) if ok else None
    if account is None or account.disabled:
        return SignIn(None, "bad-credentials")
    return SignIn(account)
