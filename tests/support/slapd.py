"""A throwaway OpenLDAP slapd in a temporary directory, with generated people.

Recipe from TESTING.md: a generated slapd.conf (mdb database in the temp dir),
users loaded with slapadd in one go (thousands of entries in well under a
second), slapd started in the foreground so that the test owns its pid.

The directory looks like a real one: people in two OUs (ou=Paris, ou=Lyon under
ou=people), a service account that may read them, a group of people allowed to
book, alternative addresses in `mailAlternateAddress`, and the usual default
size limit of 500 entries, so only a paged search reads everyone.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import ssl
import subprocess
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import ldap3

from tests.support.stack import free_port, wait_for
from tests.support.tls import TlsFiles

SUFFIX = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "root-secret-9f2c"
READER_DN = f"cn=visio-reader,ou=services,{SUFFIX}"
READER_PASSWORD = "reader-Secret-7d41"
PEOPLE = f"ou=people,{SUFFIX}"
GROUP_DN = f"cn=bookers,ou=groups,{SUFFIX}"
OUS = ("Paris", "Lyon")
FILTER = "(objectClass=inetOrgPerson)"

# mailAlternateAddress is not in OpenLDAP's bundled schemas (it comes from the
# Netscape/Sun mail schema); define it, and an auxiliary class to carry it.
_MAIL_SCHEMA = """\
attributetype ( 2.16.840.1.113730.3.1.13 NAME 'mailAlternateAddress'
    EQUALITY caseIgnoreIA5Match SUBSTR caseIgnoreIA5SubstringsMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
objectclass ( 1.3.6.1.4.1.55555.1.1 NAME 'visioTestMailRecipient' AUXILIARY
    MAY ( mailAlternateAddress ) )
"""


def ssha(password: str) -> str:
    """An {SSHA} userPassword value, as slappasswd makes it."""
    salt = os.urandom(8)
    digest = hashlib.sha1(password.encode() + salt).digest()
    return "{SSHA}" + base64.b64encode(digest + salt).decode()


@dataclass(frozen=True)
class Person:
    uid: str
    given: str
    sn: str
    ou: str
    password: str
    alternates: tuple[str, ...] = ()
    department: str = ""

    @property
    def dn(self) -> str:
        return f"uid={self.uid},ou={self.ou},{PEOPLE}"

    @property
    def mail(self) -> str:
        return f"{self.uid}@example.org"

    @property
    def name(self) -> str:
        return f"{self.given} {self.sn}"

    def attributes(self, password_hash: str) -> dict[str, list[str]]:
        attrs: dict[str, list[str]] = {
            "objectClass": ["inetOrgPerson", "visioTestMailRecipient"],
            "uid": [self.uid],
            "cn": [self.name],
            "givenName": [self.given],
            "sn": [self.sn],
            "displayName": [self.name],
            "mail": [self.mail],
            "ou": [self.ou],
            "userPassword": [password_hash],
        }
        if self.alternates:
            attrs["mailAlternateAddress"] = list(self.alternates)
        if self.department:
            attrs["departmentNumber"] = [self.department]
        return attrs


def generate_people(count: int, password: str, prefix: str = "user") -> list[Person]:
    """`count` people split over the two OUs; every third has two alternative addresses."""
    people = []
    for i in range(count):
        uid = f"{prefix}{i:05d}"
        alternates = (
            (f"{uid}.alias@example.org", f"{uid.upper()}@Old-Domain.example") if i % 3 == 0 else ()
        )
        people.append(
            Person(
                uid=uid,
                given=f"Given{i}",
                sn=f"Family{i}",
                ou=OUS[i % 2],
                password=password,
                alternates=alternates,
                department=f"D{i % 7}",
            )
        )
    return people


def _ldif_entry(dn: str, attrs: dict[str, list[str]]) -> str:
    lines = [f"dn: {dn}"]
    for name, values in attrs.items():
        lines.extend(f"{name}: {v}" for v in values)
    return "\n".join(lines) + "\n\n"


def base_ldif(people: Iterable[Person], bookers: Iterable[Person] = ()) -> str:
    """The whole directory as LDIF: suffix, OUs, service account, people, booking group."""
    parts = [
        _ldif_entry(
            SUFFIX,
            {"objectClass": ["dcObject", "organization"], "dc": ["example"], "o": ["Example"]},
        ),
        _ldif_entry(PEOPLE, {"objectClass": ["organizationalUnit"], "ou": ["people"]}),
        _ldif_entry(
            f"ou=services,{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": ["services"]}
        ),
        _ldif_entry(
            f"ou=groups,{SUFFIX}", {"objectClass": ["organizationalUnit"], "ou": ["groups"]}
        ),
        _ldif_entry(
            READER_DN,
            {
                "objectClass": ["organizationalRole", "simpleSecurityObject"],
                "cn": ["visio-reader"],
                "userPassword": [ssha(READER_PASSWORD)],
            },
        ),
    ]
    parts += [
        _ldif_entry(f"ou={ou},{PEOPLE}", {"objectClass": ["organizationalUnit"], "ou": [ou]})
        for ou in OUS
    ]
    # Hashing is the slow part of generating thousands of entries: people share
    # one password, hashed once (still a real salted hash slapd checks).
    hashes: dict[str, str] = {}
    for p in people:
        if p.password not in hashes:
            hashes[p.password] = ssha(p.password)
        parts.append(_ldif_entry(p.dn, p.attributes(hashes[p.password])))
    members = [p.dn for p in bookers] or [READER_DN]  # groupOfNames needs one member
    parts.append(
        _ldif_entry(
            GROUP_DN, {"objectClass": ["groupOfNames"], "cn": ["bookers"], "member": members}
        )
    )
    return "".join(parts)


@dataclass
class Slapd:
    """One slapd: `configure`, `load` (slapadd, while stopped), `start`, `stop`."""

    root: Path
    tls: TlsFiles | None = None
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_uri(self) -> str:
        return f"ldaps://localhost:{self.tls_port}"

    @property
    def conf(self) -> Path:
        return self.root / "slapd.conf"

    def configure(self) -> Slapd:
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        (self.root / "mail.schema").write_text(_MAIL_SCHEMA)
        tls = ""
        if self.tls:
            tls = textwrap.dedent(f"""\
                TLSCACertificateFile {self.tls.ca}
                TLSCertificateFile {self.tls.cert}
                TLSCertificateKeyFile {self.tls.key}
                # With TLS on, refuse password binds without it: a client that
                # forgot StartTLS fails instead of sending passwords in clear.
                security simple_bind=64
                """)
        self.conf.write_text(
            textwrap.dedent(f"""\
            include /etc/ldap/schema/core.schema
            include /etc/ldap/schema/cosine.schema
            include /etc/ldap/schema/inetorgperson.schema
            include /etc/ldap/schema/nis.schema
            include {self.root / "mail.schema"}
            pidfile {self.root / "slapd.pid"}
            argsfile {self.root / "slapd.args"}
            modulepath /usr/lib/ldap
            moduleload back_mdb
            sizelimit 500
            """)
            + tls
            + textwrap.dedent(f"""\
            database mdb
            maxsize 1073741824
            suffix "{SUFFIX}"
            rootdn "{ROOT_DN}"
            rootpw {ssha(ROOT_PASSWORD)}
            directory {self.root / "db"}
            index objectClass eq
            index uid,mail,cn,member eq
            index modifyTimestamp eq
            # A real directory caps plain searches; paging reads past the cap.
            limits users size.soft=500 size.hard=500 size.prtotal=unlimited
            access to attrs=userPassword by self write by anonymous auth by * none
            access to * by dn.exact="{READER_DN}" read by self read by * none
            """)
        )
        subprocess.run(["slaptest", "-u", "-Q", "-f", str(self.conf)], check=True)
        return self

    def load(self, ldif: str) -> None:
        """Bulk-load entries with slapadd (slapd must not be running)."""
        assert self.proc is None, "slapadd needs slapd stopped"
        path = self.root / "data.ldif"
        path.write_text(ldif)
        subprocess.run(
            ["slapadd", "-q", "-f", str(self.conf), "-l", str(path)],
            check=True,
            capture_output=True,
        )

    def start(self) -> Slapd:
        urls = self.uri + "/"
        if self.tls:
            urls += f" ldaps://127.0.0.1:{self.tls_port}/"
        # -d 0: stay in the foreground so this pid is slapd's; no debug output.
        self.proc = subprocess.Popen(
            ["slapd", "-d", "0", "-f", str(self.conf), "-h", urls],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._answers, timeout=20, what="slapd")
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"slapd exited with {self.proc.returncode}")
        conn = ldap3.Connection(ldap3.Server(self.uri, get_info=ldap3.NONE, connect_timeout=1))
        try:
            return bool(conn.bind())
        finally:
            conn.unbind()

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def admin(self) -> ldap3.Connection:
        """A connection bound as the rootdn, for changes the tests make."""
        tls = None
        if self.tls:
            tls = ldap3.Tls(validate=ssl.CERT_REQUIRED, ca_certs_file=str(self.tls.ca))
        server = ldap3.Server(self.uri, get_info=ldap3.NONE, tls=tls)
        auto_bind = ldap3.AUTO_BIND_TLS_BEFORE_BIND if self.tls else ldap3.AUTO_BIND_NO_TLS
        return ldap3.Connection(
            server, ROOT_DN, ROOT_PASSWORD, auto_bind=auto_bind, raise_exceptions=True
        )

    def modify(self, dn: str, changes: dict[str, list[str]]) -> None:
        with self.admin() as conn:
            conn.modify(dn, {k: [(ldap3.MODIFY_REPLACE, v)] for k, v in changes.items()})

    def add_person(self, person: Person) -> None:
        with self.admin() as conn:
            conn.add(person.dn, attributes=person.attributes(ssha(person.password)))

    def delete(self, dn: str) -> None:
        with self.admin() as conn:
            conn.delete(dn)

    def set_bookers(self, people: Iterable[Person]) -> None:
        self.modify(GROUP_DN, {"member": [p.dn for p in people] or [READER_DN]})


def running_slapd(root: Path, ldif: str, tls: TlsFiles | None = None) -> Iterator[Slapd]:
    """Generator body for fixtures: a configured, loaded, started slapd; stopped after."""
    slapd = Slapd(root, tls=tls).configure()
    slapd.load(ldif)
    slapd.start()
    try:
        yield slapd
    finally:
        slapd.stop()
