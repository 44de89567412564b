"""The application keys both processes' apps hold (the front's and a media worker's).

Each side adds its own in its `keys` module (conference_backend.keys,
visio_rooms.keys): no module-level state anywhere, one name per resource.
"""

from __future__ import annotations

from aiohttp import web

from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.identity import LinkDirectory
from visio_core.registry import Registry
from visio_core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REGISTRY = web.AppKey("registry", Registry)
ACCOUNTS = web.AppKey("accounts", Accounts)
SERVER_KEY = web.AppKey("server_key", bytes)  # signs resume tokens; the join-link key
LINKS = web.AppKey("links", LinkDirectory)  # token hash -> room (and person, for personal links)
