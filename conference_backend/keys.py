"""Typed application keys: the backend keeps no module-level state."""

from __future__ import annotations

from aiohttp import web

from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.registry import Registry
from visio_core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REGISTRY = web.AppKey("registry", Registry)
ACCOUNTS = web.AppKey("accounts", Accounts)
