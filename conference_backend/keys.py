"""The front's application keys (the shared ones come from visio_core.appkeys)."""

from __future__ import annotations

from aiohttp import web

from conference_backend.phone.gateway import PhoneGateway
from visio_core.appkeys import ACCOUNTS, DB, LINKS, REGISTRY, SERVER_KEY, SETTINGS
from visio_core.placement import LocalPlacement

__all__ = ["ACCOUNTS", "DB", "LINKS", "PHONE", "PLACEMENT", "REGISTRY", "SERVER_KEY", "SETTINGS"]

PLACEMENT = web.AppKey("placement", LocalPlacement)  # where each live room is
PHONE = web.AppKey("phone", PhoneGateway)  # only with VISIO_SIP_LISTEN
