"""A media worker's application keys (the shared ones come from visio_core.appkeys)."""

from __future__ import annotations

from aiohttp import web

from visio_core.appkeys import ACCOUNTS, DB, LINKS, REGISTRY, SERVER_KEY, SETTINGS
from visio_rooms.rooms import RoomManager

__all__ = ["ACCOUNTS", "DB", "LINKS", "REGISTRY", "ROOMS", "SERVER_KEY", "SETTINGS"]

ROOMS = web.AppKey("rooms", RoomManager)
