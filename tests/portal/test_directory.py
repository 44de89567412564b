"""Directory accounts: a directory that does not answer is said plainly; passwords live there.

The stack runs in LDAP mode against a port where nothing listens (no slapd is
needed to show what happens when the directory is down).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

import pytest
import requests

from tests.support.stack import Stack, free_port

PASSWORD_PAGE = "https://annuaire.example.org/mot-de-passe"


@pytest.fixture(scope="module")
def ldap_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    env = {
        "VISIO_LDAP_URI": f"ldap://127.0.0.1:{free_port()}",
        "VISIO_LDAP_BASE": "dc=example,dc=org",
        "VISIO_LDAP_SYNC_INTERVAL": "0",
        "VISIO_PASSWORD_URL": PASSWORD_PAGE,
    }
    s = Stack(tmp_path_factory.mktemp("ldap-down"), extra_env=env).start()
    try:
        yield s
    finally:
        s.stop()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


def test_sign_in_says_the_directory_is_down(ldap_down: Stack) -> None:
    web = requests.Session()
    csrf = csrf_of(web.get(ldap_down.web_url + "login", timeout=30).text)
    r = web.post(
        ldap_down.web_url + "login",
        data={"csrf": csrf, "login": "claire", "password": "whatever it is"},
        timeout=60,
    )
    assert r.status_code == 401
    assert "L'annuaire des comptes ne répond pas pour le moment" in html.unescape(r.text)


def test_reset_sends_directory_accounts_to_their_password_page(ldap_down: Stack) -> None:
    web = requests.Session()
    csrf = csrf_of(web.get(ldap_down.web_url + "reset", timeout=30).text)
    r = web.post(ldap_down.web_url + "reset", data={"csrf": csrf, "login": "claire"}, timeout=30)
    assert r.ok
    assert f'href="{PASSWORD_PAGE}"' in r.text
    assert "Votre mot de passe est celui de l'annuaire" in html.unescape(r.text)
