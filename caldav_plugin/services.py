"""Process-wide services of the Radicale side, built once from the settings."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cached_property

from visio_core import settings as settings_mod
from visio_core.accounts import Accounts
from visio_core.db import Database
from visio_core.registry import Registry
from visio_core.settings import Settings
from visio_core.tokens import load_or_create_key


@dataclass
class Services:
    settings: Settings

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.database)

    @cached_property
    def registry(self) -> Registry:
        return Registry(self.db)

    @cached_property
    def accounts(self) -> Accounts:
        return Accounts(self.db)

    @cached_property
    def key(self) -> bytes:
        return load_or_create_key(self.settings.key_path)


_lock = threading.Lock()
_services: Services | None = None


def get() -> Services:
    """The services for this process; Radicale builds plugins from its own config only."""
    global _services
    with _lock:
        if _services is None:
            settings, _ = settings_mod.load(os.environ)
            _services = Services(settings)
        return _services


def install(services: Services) -> None:
    """Use these services in this process (the launcher and tests that run in-process)."""
    global _services
    with _lock:
        _services = services
