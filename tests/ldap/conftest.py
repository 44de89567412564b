"""Shared pieces of the LDAP tests: a real slapd per module, settings pointing at it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from tests.support import database
from tests.support import slapd as S
from tests.support.database import open_db
from tests.support.stack import ROOT
from visio_core import settings as settings_mod
from visio_core.settings import Settings

PASSWORD = "Dir-Passw0rd!"  # every generated person's directory password
# People whose entry says employeeType=disabled are not accounts: how a directory
# marks people who left without deleting them (AD would test userAccountControl).
FILTER = "(&(objectClass=inetOrgPerson)(!(employeeType=disabled)))"


def ldap_env(slapd: S.Slapd, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {
        "VISIO_CONFIG": str(ROOT / "radicale.conf"),
        "VISIO_DATA_DIR": str(data_dir),
        "VISIO_LDAP_URI": slapd.uri,
        "VISIO_LDAP_BASE": S.SUFFIX,
        "VISIO_LDAP_BIND_DN": S.READER_DN,
        "VISIO_LDAP_BIND_PASSWORD": S.READER_PASSWORD,
        "VISIO_LDAP_FILTER": FILTER,
        "VISIO_LDAP_ALT_MAIL_ATTRIBUTES": "mailAlternateAddress",
        "VISIO_LDAP_BOOKING_GROUP": S.GROUP_DN,
    }
    if slapd.tls:
        env.update(VISIO_LDAP_STARTTLS="yes", VISIO_LDAP_CA_FILE=str(slapd.tls.ca))
    if database.server_url():  # `make test-postgres`: the schema of this data dir
        open_db(data_dir / "visio.sqlite3").close()
        env["VISIO_DATABASE_URL"] = str(database.target(data_dir / "visio.sqlite3"))
    env.update(extra)
    return env


def load_settings(env: Mapping[str, str]) -> tuple[Settings, dict[str, dict[str, str]]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VISIO_")}
    return settings_mod.load({**clean, **env})
