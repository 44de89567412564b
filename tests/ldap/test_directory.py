"""The directory client against a real slapd (TLS on): logins, paging, TLS, failures."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import ldap3
import pytest

from ldap_sync.directory import Directory, DirectoryConfig, DirectoryError, DirectoryUnavailable
from ldap_sync.entries import UnusableEntry
from tests.ldap.conftest import PASSWORD, ldap_env, load_settings
from tests.support import slapd as S
from tests.support.stack import free_port
from tests.support.tls import make_tls_files

COUNT = 2500
PEOPLE = S.generate_people(COUNT, PASSWORD)


@pytest.fixture(scope="module")
def referral_target() -> Iterator[socket.socket]:
    """A listening socket a referral points to: nothing may ever connect to it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        sock.setblocking(False)
        yield sock


@pytest.fixture(scope="module")
def slapd(tmp_path_factory, referral_target) -> Iterator[S.Slapd]:
    root = tmp_path_factory.mktemp("slapd")
    port = referral_target.getsockname()[1]
    referral = (
        f"dn: ou=elsewhere,{S.PEOPLE}\nobjectClass: referral\nobjectClass: extensibleObject\n"
        f"ou: elsewhere\nref: ldap://127.0.0.1:{port}/ou=elsewhere,{S.PEOPLE}\n\n"
    )
    ldif = S.base_ldif(PEOPLE, bookers=PEOPLE[:5]) + referral
    yield from S.running_slapd(root, ldif, tls=make_tls_files(root / "tls"))


@pytest.fixture(scope="module")
def config(slapd, tmp_path_factory) -> DirectoryConfig:
    settings, _ = load_settings(ldap_env(slapd, tmp_path_factory.mktemp("var")))
    return DirectoryConfig.from_settings(settings)


@pytest.fixture(scope="module")
def directory(config) -> Directory:
    return Directory(config)


def test_login_with_the_directory_password(directory):
    alice = PEOPLE[3]
    user = directory.authenticate(alice.uid, PASSWORD)
    assert user is not None
    assert (user.login, user.email, user.name, user.entity) == (
        alice.uid,
        alice.mail,
        alice.name,
        "Lyon",
    )
    assert set(user.addresses) == {alice.mail, *(a.lower() for a in alice.alternates)}
    # Logins are matched as the directory does (case-insensitive) and come back canonical.
    upper = directory.authenticate(alice.uid.upper(), PASSWORD)
    assert upper is not None and upper.login == alice.uid


def test_wrong_empty_and_unknown_credentials_are_refused(directory):
    assert directory.authenticate(PEOPLE[0].uid, PASSWORD + "x") is None
    assert directory.authenticate(PEOPLE[0].uid, "") is None
    assert directory.authenticate("", PASSWORD) is None
    assert directory.authenticate("nobody", PASSWORD) is None


@pytest.mark.parametrize(
    "login",
    [
        "*)(uid=*",
        "*",
        "user0000*",
        # Unescaped, this filter would select exactly user00001 and log in as them.
        f"{PEOPLE[1].uid})(objectClass=*",
        f"*)(uid={PEOPLE[2].uid}",
        "\\2a",
    ],
)
def test_injection_logins_find_nobody(directory, login):
    assert directory.authenticate(login, PASSWORD) is None


def test_paged_read_gets_past_the_size_limit(slapd, directory):
    # The directory caps a plain search at 500 entries, like real ones do…
    with ldap3.Connection(
        ldap3.Server(slapd.uri, get_info=ldap3.NONE, tls=_tls(slapd)),
        S.READER_DN,
        S.READER_PASSWORD,
        auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND,
    ) as conn:
        conn.search(S.PEOPLE, S.FILTER, attributes=["uid"])
        assert conn.result["description"] == "sizeLimitExceeded"
        assert len(conn.entries) == 500
    # …and the paged read gets every account, from both OUs.
    pages: list[int] = []
    with directory.session() as session:
        users = list(session.users(on_page=pages.append))
    assert not [u for u in users if isinstance(u, UnusableEntry)]
    assert len(users) == COUNT and len(pages) == COUNT // 500
    assert {u.entity for u in users if not isinstance(u, UnusableEntry)} == {"Paris", "Lyon"}


def test_referrals_are_not_followed(config, referral_target):
    # A search whose base is a referral: ldap3 would by default connect to the
    # server it names and bind there with the same credentials.
    elsewhere = Directory(dataclasses.replace(config, base=f"ou=elsewhere,{S.PEOPLE}"))
    assert elsewhere.authenticate(PEOPLE[0].uid, PASSWORD) is None
    with pytest.raises(DirectoryError, match="referral"), elsewhere.session() as session:
        list(session.users())
    with pytest.raises(BlockingIOError):  # nobody ever connected to the referral's server
        referral_target.accept()


def test_booking_group_members(directory):
    with directory.session() as session:
        members = session.group_members()
    assert members == {p.dn.lower() for p in PEOPLE[:5]}


def _tls(slapd: S.Slapd) -> ldap3.Tls:
    import ssl

    assert slapd.tls is not None
    return ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(slapd.tls.ca))


def test_ldaps_with_the_ca_file(slapd, config):
    ldaps = Directory(dataclasses.replace(config, uri=slapd.ldaps_uri, starttls=False))
    assert ldaps.authenticate(PEOPLE[5].uid, PASSWORD) is not None


def test_certificate_is_verified(slapd, config):
    # Without our CA the self-signed chain is refused, on both ways to TLS.
    for uri, starttls in ((slapd.uri, True), (slapd.ldaps_uri, False)):
        untrusting = Directory(dataclasses.replace(config, uri=uri, starttls=starttls, ca_file=""))
        with pytest.raises(DirectoryUnavailable, match="certificate verify failed"):
            untrusting.authenticate(PEOPLE[5].uid, PASSWORD)


def test_plain_ldap_is_refused_by_a_tls_only_directory(config):
    # Proves the StartTLS above is real: without it this directory refuses the bind.
    plain = Directory(dataclasses.replace(config, starttls=False))
    with pytest.raises(DirectoryError, match="onfidentiality"):
        plain.authenticate(PEOPLE[5].uid, PASSWORD)


def test_wrong_service_password_is_a_configuration_error(config):
    wrong = Directory(dataclasses.replace(config, bind_password="wrong"))
    with pytest.raises(DirectoryError) as caught:
        wrong.authenticate(PEOPLE[0].uid, PASSWORD)
    assert not isinstance(caught.value, DirectoryUnavailable)
    assert "invalidCredentials" in str(caught.value) and "wrong" not in str(caught.value)


def test_directory_down_is_unavailable_not_a_refusal(config):
    down = Directory(dataclasses.replace(config, uri=f"ldap://127.0.0.1:{free_port()}"))
    with pytest.raises(DirectoryUnavailable):
        down.authenticate(PEOPLE[0].uid, PASSWORD)
    with pytest.raises(DirectoryUnavailable), down.session():
        pass
