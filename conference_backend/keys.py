"""Typed application keys: the backend keeps no module-level state."""

from __future__ import annotations

from aiohttp import web

from conference_backend.identity import LinkDirectory
from conference_backend.phone.gateway import PhoneGateway
from conference_backend.rooms import RoomManager
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.placement import LocalPlacement
from visio_core.registry import Registry
from visio_core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DB = web.AppKey("db", Database)
REGISTRY = web.AppKey("registry", Registry)
ACCOUNTS = web.AppKey("accounts", Accounts)
SERVER_KEY = web.AppKey("server_key", bytes)  # signs resume tokens; the join-link key
LINKS = web.AppKey("links", LinkDirectory)  # token hash -> room (and person, for personal links)
ROOMS = web.AppKey("rooms", RoomManager)  # in a media worker
PLACEMENT = web.AppKey("placement", LocalPlacement)  # in the front: where each room lives
PHONE = web.AppKey("phone", PhoneGateway)  # only with VISIO_SIP_LISTEN
