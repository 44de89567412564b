"""The product's settings: `[visio]` in radicale.conf, each overridden by a VISIO_* variable.

Parsing is pure (mappings in, a frozen Settings out); reading the file is the
caller's business.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from visio_core import i18n
from visio_core import limits as signal_limits
from visio_core import node as node_options
from visio_core import throttle as password_throttle
from visio_core.categories import (
    DEFAULT_AUDIO_WORDS,
    DEFAULT_RECORD_WORDS,
    DEFAULT_VIDEO_WORDS,
    CategoryRules,
    parse_word_list,
)

SECTION = "visio"

# setting name -> (environment variable, default)
_OPTIONS: dict[str, tuple[str, str]] = {
    "data_dir": ("VISIO_DATA_DIR", "./var"),
    "database_url": ("VISIO_DATABASE_URL", ""),  # empty: SQLite in the data dir
    "caldav_listen": ("VISIO_CALDAV_LISTEN", "127.0.0.1:5232"),
    "web_listen": ("VISIO_WEB_LISTEN", "127.0.0.1:8080"),
    "public_url": ("VISIO_PUBLIC_URL", ""),  # empty: the web address itself
    "smtp_url": ("VISIO_SMTP_URL", ""),
    "mail_from": ("VISIO_MAIL_FROM", "visio@localhost"),
    "dialin_number": ("VISIO_DIALIN_NUMBER", ""),
    "language": ("VISIO_LANGUAGE", "fr"),
    "early_join_minutes": ("VISIO_EARLY_JOIN_MINUTES", "15"),
    "ldap_uri": ("VISIO_LDAP_URI", ""),
    "ldap_base": ("VISIO_LDAP_BASE", ""),
    "ldap_bind_dn": ("VISIO_LDAP_BIND_DN", ""),
    "ldap_bind_password": ("VISIO_LDAP_BIND_PASSWORD", ""),
    "ldap_filter": ("VISIO_LDAP_FILTER", "(objectClass=inetOrgPerson)"),
    "ldap_login_attribute": ("VISIO_LDAP_LOGIN_ATTRIBUTE", "uid"),
    "ldap_bind_password_file": ("VISIO_LDAP_BIND_PASSWORD_FILE", ""),
    "ldap_starttls": ("VISIO_LDAP_STARTTLS", "no"),
    "ldap_ca_file": ("VISIO_LDAP_CA_FILE", ""),
    "ldap_mail_attribute": ("VISIO_LDAP_MAIL_ATTRIBUTE", "mail"),
    "ldap_alt_mail_attributes": (
        "VISIO_LDAP_ALT_MAIL_ATTRIBUTES",
        "mailAlternateAddress, proxyAddresses",
    ),
    "ldap_name_attributes": ("VISIO_LDAP_NAME_ATTRIBUTES", "displayName, cn"),
    "ldap_entity_attribute": ("VISIO_LDAP_ENTITY_ATTRIBUTE", "ou"),
    "ldap_booking_group": ("VISIO_LDAP_BOOKING_GROUP", ""),
    "ldap_sync_interval": ("VISIO_LDAP_SYNC_INTERVAL", "300"),
    "ldap_full_sync_interval": ("VISIO_LDAP_FULL_SYNC_INTERVAL", "3600"),
    "invite_organizer": ("VISIO_INVITE_ORGANIZER", "yes"),
    "smtp_user": ("VISIO_SMTP_USER", ""),
    "smtp_password": ("VISIO_SMTP_PASSWORD", ""),
    "smtp_password_file": ("VISIO_SMTP_PASSWORD_FILE", ""),
    "smtp_ca_file": ("VISIO_SMTP_CA_FILE", ""),
    "sip_listen": ("VISIO_SIP_LISTEN", ""),
    "sip_allow": ("VISIO_SIP_ALLOW", "127.0.0.0/8"),
    "sip_user": ("VISIO_SIP_USER", ""),
    "sip_password_file": ("VISIO_SIP_PASSWORD_FILE", ""),
    "video_words": ("VISIO_VIDEO_WORDS", ", ".join(DEFAULT_VIDEO_WORDS)),
    "audio_words": ("VISIO_AUDIO_WORDS", ", ".join(DEFAULT_AUDIO_WORDS)),
    "record_words": ("VISIO_RECORD_WORDS", ", ".join(DEFAULT_RECORD_WORDS)),
    "ice_announced_address": ("VISIO_ICE_ANNOUNCED_ADDRESS", ""),
    "turn_url": ("VISIO_TURN_URL", ""),
    "turn_username": ("VISIO_TURN_USERNAME", ""),
    "turn_credential": ("VISIO_TURN_CREDENTIAL", ""),
    "room_capacity": ("VISIO_ROOM_CAPACITY", "50"),
    "room_grace_minutes": ("VISIO_ROOM_GRACE_MINUTES", "15"),
    "visible_thumbnails": ("VISIO_VISIBLE_THUMBNAILS", "9"),
    "trust_bwe": ("VISIO_TRUST_BWE", "yes"),
    "media_workers": ("VISIO_MEDIA_WORKERS", ""),
    "support_phone": ("VISIO_SUPPORT_PHONE", ""),
    "help_url": ("VISIO_HELP_URL", ""),
    "password_url": ("VISIO_PASSWORD_URL", ""),
    "reset_mail_minutes": ("VISIO_RESET_MAIL_MINUTES", "5"),
    "show_busy_titles": ("VISIO_SHOW_BUSY_TITLES", "no"),
    "recording_days": ("VISIO_RECORDING_DAYS", "30"),
    "recording_preset": ("VISIO_RECORDING_PRESET", "veryfast"),
    "record_start": ("VISIO_RECORD_START", "open"),
    **signal_limits.OPTIONS,  # the room signalling's limits (visio_core/limits.py)
    **password_throttle.OPTIONS,  # wrong-password lockouts, checks at once (throttle.py)
    **node_options.OPTIONS,  # several machines: Redis, node name, shared key (node.py)
}


class SettingsError(ValueError):
    """A setting has a value the product cannot use; the message says which and why."""


def parse_listen(value: str, name: str) -> tuple[str, int]:
    host, sep, port = value.strip().rpartition(":")
    bad = not sep or not (port.isascii() and port.isdigit()) or not 0 < int(port or 0) < 65536
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        bad = True  # an IPv6 address needs brackets: [::1]:5232
    if bad:
        raise SettingsError(f"{name} must look like HOST:PORT or [IPv6]:PORT (got {value!r})")
    return host.strip("[]") or "127.0.0.1", int(port)


def _database_url(url: str) -> str:
    scheme = url.split(":", 1)[0].lower()
    if url and not (scheme in ("postgresql", "postgres") or url.startswith("sqlite:///")):
        raise SettingsError(
            "VISIO_DATABASE_URL must be postgresql://USER:PASSWORD@HOST:PORT/NAME"
            " or sqlite:///PATH (empty: var/visio.sqlite3)"
        )
    return url


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    caldav_listen: tuple[str, int]
    web_listen: tuple[str, int]
    public_url: str
    smtp_url: str
    mail_from: str
    dialin_number: str
    language: str
    early_join_minutes: int
    ldap_uri: str
    ldap_base: str
    ldap_bind_dn: str
    ldap_bind_password: str
    ldap_filter: str
    ldap_login_attribute: str
    sip_listen: str
    sip_allow: str
    rules: CategoryRules = field(default_factory=CategoryRules.from_words)
    # Invitations (iMIP): the organizer gets a copy; SMTP credentials (the password
    # file is read by the mailer, so it never sits in the environment).
    invite_organizer: bool = True
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_password_file: str = ""
    smtp_ca_file: str = ""
    # Accounts from LDAP (ldap_sync, caldav_plugin.ldap_auth); the bind password
    # file is read by the directory client, not here (parsing stays pure).
    ldap_bind_password_file: str = ""
    ldap_starttls: bool = False  # ldap:// upgraded with StartTLS; ldaps:// is TLS anyway
    ldap_ca_file: str = ""  # PEM CA bundle that verifies the directory's certificate
    ldap_mail_attribute: str = "mail"
    ldap_alt_mail_attributes: tuple[str, ...] = ("mailAlternateAddress", "proxyAddresses")
    ldap_name_attributes: tuple[str, ...] = ("displayName", "cn")  # first one present wins
    ldap_entity_attribute: str = "ou"  # or "parent": the RDN value of the entry's parent
    ldap_booking_group: str = ""  # DN of the group whose members may book; unset: everyone
    ldap_sync_interval: int = 300  # seconds between syncs in `visio serve`; 0: never
    ldap_full_sync_interval: int = 3600  # seconds between full passes (they see deletions)
    # The media plane (conference rooms).
    ice_announced_address: str = ""  # written into ICE host candidates (1:1 NAT, public IP)
    turn_url: str = ""  # turn:host:port?transport=udp, handed to browsers
    turn_username: str = ""
    turn_credential: str = ""
    room_capacity: int = 50
    room_grace_minutes: int = 15  # an empty room stays joinable this long after the end
    visible_thumbnails: int = 9  # participant thumbnails the room page shows at once
    # Receivers' REMB estimates choose layers (a weak link gets low ones); "no" lets
    # views alone decide (as Jitsi's trust-bwe=false), for a LAN whose browsers' own
    # CPU load makes their estimates meaningless.
    trust_bwe: bool = True
    media_workers: int = 1  # processes holding the live rooms (default: one per core)
    # The booking portal: shown on every page / used by "Réinitialiser votre mot de passe".
    support_phone: str = ""
    help_url: str = ""
    password_url: str = ""  # the directory's own password page (LDAP accounts)
    reset_mail_minutes: int = 5  # at most one password reset mail per login this often
    show_busy_titles: bool = False  # overlap warnings name the other meeting (else "occupé")
    # The phone gateway: digest credentials for SIP peers outside VISIO_SIP_ALLOW
    # (the password file is read by the gateway, so it never sits in the environment).
    sip_user: str = ""
    sip_password_file: str = ""
    # Recordings: kept this many days (0: forever); x264 preset of the room encoder.
    recording_days: int = 30
    recording_preset: str = "veryfast"
    record_start: str = "open"  # "open": from the room's opening; "button": the organizer's
    limits: signal_limits.SignalLimits = field(default_factory=signal_limits.SignalLimits)
    throttle: password_throttle.Policy = field(default_factory=password_throttle.Policy)
    # postgresql://… when several machines share the database; empty: the SQLite file.
    database_url: str = ""
    node: node_options.NodeSettings = field(
        default_factory=lambda: node_options.NodeSettings(os.uname().nodename, "")
    )
    caldav_enabled: bool = True  # VISIO_CALDAV_LISTEN=off: another node runs the CalDAV server

    @property
    def join_prefix(self) -> str:
        return self.public_url + "/j/"

    @property
    def database_path(self) -> Path:
        return self.data_dir / "visio.sqlite3"

    @property
    def database(self) -> Path | str:
        """What visio_core.db.Database opens: the URL if one is set, else the SQLite file."""
        return self.database_url or self.database_path

    @property
    def key_path(self) -> Path:
        """The server key: the same file on every node (links, resume words, routes)."""
        return self.node.key_file or self.data_dir / "secret.key"

    @property
    def collections_dir(self) -> Path:
        return self.data_dir / "collections"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def recordings_dir(self) -> Path:
        return self.node.recordings_dir or self.data_dir / "recordings"

    @property
    def caldav_url(self) -> str:
        """Where this node reaches the CalDAV server: its own, or the CalDAV host's."""
        return self.node.caldav_url or _url(*self.caldav_listen)

    @property
    def web_url(self) -> str:
        return _url(*self.web_listen)


def resolve(file_values: Mapping[str, str], env: Mapping[str, str]) -> Settings:
    """Settings from the `[visio]` section's values and the environment (which wins)."""
    raw: dict[str, str] = {}
    for name, (variable, default) in _OPTIONS.items():
        value = env.get(variable)
        raw[name] = value if value is not None else file_values.get(name, default)
    web_listen = parse_listen(raw["web_listen"], "VISIO_WEB_LISTEN")
    # Unset, links point at the web backend's own address, so a moved port never
    # yields links to nowhere; behind a proxy, set VISIO_PUBLIC_URL.
    public_url = raw["public_url"].strip().rstrip("/") or _url(*web_listen).rstrip("/")
    if not public_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"VISIO_PUBLIC_URL must start with http:// or https:// (got {public_url!r})"
        )
    try:
        early = int(raw["early_join_minutes"])
    except ValueError as e:
        raise SettingsError("VISIO_EARLY_JOIN_MINUTES must be a whole number of minutes") from e
    if early < 0:
        raise SettingsError("VISIO_EARLY_JOIN_MINUTES cannot be negative")
    capacity = _whole(raw["room_capacity"], "VISIO_ROOM_CAPACITY", minimum=1)
    grace = _whole(raw["room_grace_minutes"], "VISIO_ROOM_GRACE_MINUTES", minimum=0)
    thumbnails = _whole(raw["visible_thumbnails"], "VISIO_VISIBLE_THUMBNAILS", minimum=1)
    workers = _whole(
        raw["media_workers"].strip() or str(os.cpu_count() or 1), "VISIO_MEDIA_WORKERS", minimum=0
    )
    caldav_enabled = raw["caldav_listen"].strip().lower() != node_options.OFF
    try:
        node = node_options.parse(raw, web_listen, workers, caldav_enabled)
    except node_options.NodeError as e:
        raise SettingsError(str(e)) from e
    turn_url = raw["turn_url"].strip()
    if turn_url and not turn_url.startswith(("turn:", "turns:", "stun:")):
        raise SettingsError(
            f"VISIO_TURN_URL must start with turn:, turns: or stun: (got {turn_url!r})"
        )
    dialin = raw["dialin_number"].strip()
    if dialin and not any(c.isdigit() for c in dialin):
        raise SettingsError(f"VISIO_DIALIN_NUMBER must be a phone number (got {dialin!r})")
    ldap = _ldap_options(raw)
    try:
        limits = signal_limits.parse(raw)
    except signal_limits.LimitError as e:
        raise SettingsError(str(e)) from e
    try:
        throttle = password_throttle.parse(raw)
    except password_throttle.ThrottleError as e:
        raise SettingsError(str(e)) from e
    return Settings(
        data_dir=Path(raw["data_dir"]).expanduser().absolute(),
        caldav_listen=parse_listen(
            raw["caldav_listen"] if caldav_enabled else _OPTIONS["caldav_listen"][1],
            "VISIO_CALDAV_LISTEN",
        ),
        caldav_enabled=caldav_enabled,
        node=node,
        web_listen=web_listen,
        public_url=public_url,
        smtp_url=raw["smtp_url"].strip(),
        database_url=_database_url(raw["database_url"].strip()),
        mail_from=raw["mail_from"].strip(),
        dialin_number=dialin,
        language=i18n.language(raw["language"]),
        early_join_minutes=early,
        ldap_uri=raw["ldap_uri"].strip().rstrip("/"),
        ldap_base=raw["ldap_base"].strip(),
        ldap_bind_dn=raw["ldap_bind_dn"].strip(),
        ldap_bind_password=raw["ldap_bind_password"],
        ldap_filter=raw["ldap_filter"].strip(),
        ldap_login_attribute=raw["ldap_login_attribute"].strip() or "uid",
        **ldap,
        sip_listen=raw["sip_listen"].strip(),
        sip_allow=raw["sip_allow"].strip(),
        sip_user=raw["sip_user"].strip(),
        sip_password_file=raw["sip_password_file"].strip(),
        rules=CategoryRules.from_words(
            parse_word_list(raw["video_words"]),
            parse_word_list(raw["audio_words"]),
            parse_word_list(raw["record_words"]),
        ),
        ice_announced_address=raw["ice_announced_address"].strip(),
        turn_url=turn_url,
        turn_username=raw["turn_username"].strip(),
        turn_credential=raw["turn_credential"],
        room_capacity=capacity,
        room_grace_minutes=grace,
        visible_thumbnails=thumbnails,
        trust_bwe=(raw["trust_bwe"].strip().lower() or "yes") not in _NO,
        media_workers=workers,
        invite_organizer=raw["invite_organizer"].strip().lower() not in _NO,
        smtp_user=raw["smtp_user"].strip(),
        smtp_password=raw["smtp_password"],
        smtp_password_file=raw["smtp_password_file"].strip(),
        smtp_ca_file=raw["smtp_ca_file"].strip(),
        support_phone=raw["support_phone"].strip(),
        help_url=raw["help_url"].strip(),
        password_url=raw["password_url"].strip(),
        reset_mail_minutes=_whole(raw["reset_mail_minutes"], "VISIO_RESET_MAIL_MINUTES", 1),
        show_busy_titles=raw["show_busy_titles"].strip().lower() in _YES,
        recording_days=_whole(raw["recording_days"], "VISIO_RECORDING_DAYS", minimum=0),
        recording_preset=_preset(raw["recording_preset"]),
        record_start=_record_start(raw["record_start"]),
        limits=limits,
        throttle=throttle,
    )


_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium")


def _preset(value: str) -> str:
    preset = value.strip().lower()
    if preset not in _PRESETS:
        raise SettingsError(f"VISIO_RECORDING_PRESET must be one of {', '.join(_PRESETS)}")
    return preset


def _record_start(value: str) -> str:
    mode = value.strip().lower()
    if mode not in ("open", "button"):
        raise SettingsError(f"VISIO_RECORD_START must be open or button (got {value!r})")
    return mode


def _whole(value: str, variable: str, minimum: int) -> int:
    try:
        number = int(value)
    except ValueError as e:
        raise SettingsError(f"{variable} must be a whole number (got {value!r})") from e
    if number < minimum:
        raise SettingsError(f"{variable} must be at least {minimum} (got {number})")
    return number


_ATTRIBUTE_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)$")
_YES = {"1", "yes", "true", "on"}
_NO = {"0", "no", "false", "off", ""}


def _attribute(value: str, variable: str) -> str:
    """An LDAP attribute name (or OID): it goes into filters, so nothing else is allowed."""
    value = value.strip()
    if not _ATTRIBUTE_RE.fullmatch(value):
        raise SettingsError(f"{variable} must be an LDAP attribute name (got {value!r})")
    return value


def _ldap_options(raw: Mapping[str, str]) -> dict[str, Any]:
    uri = raw["ldap_uri"].strip().rstrip("/")
    if uri and not uri.lower().startswith(("ldap://", "ldaps://")):
        raise SettingsError(f"VISIO_LDAP_URI must start with ldap:// or ldaps:// (got {uri!r})")
    starttls = raw["ldap_starttls"].strip().lower()
    if starttls not in _YES | _NO:
        raise SettingsError(f"VISIO_LDAP_STARTTLS must be yes or no (got {starttls!r})")
    _attribute(raw["ldap_login_attribute"] or "uid", "VISIO_LDAP_LOGIN_ATTRIBUTE")
    entity = raw["ldap_entity_attribute"].strip()
    return {
        "ldap_bind_password_file": raw["ldap_bind_password_file"].strip(),
        "ldap_starttls": starttls in _YES,
        "ldap_ca_file": raw["ldap_ca_file"].strip(),
        "ldap_mail_attribute": _attribute(raw["ldap_mail_attribute"], "VISIO_LDAP_MAIL_ATTRIBUTE"),
        "ldap_alt_mail_attributes": tuple(
            _attribute(a, "VISIO_LDAP_ALT_MAIL_ATTRIBUTES")
            for a in raw["ldap_alt_mail_attributes"].split(",")
            if a.strip()
        ),
        "ldap_name_attributes": tuple(
            _attribute(a, "VISIO_LDAP_NAME_ATTRIBUTES")
            for a in raw["ldap_name_attributes"].split(",")
            if a.strip()
        ),
        "ldap_entity_attribute": entity and _attribute(entity, "VISIO_LDAP_ENTITY_ATTRIBUTE"),
        "ldap_booking_group": raw["ldap_booking_group"].strip(),
        "ldap_sync_interval": _whole(raw["ldap_sync_interval"], "VISIO_LDAP_SYNC_INTERVAL", 0),
        "ldap_full_sync_interval": _whole(
            raw["ldap_full_sync_interval"], "VISIO_LDAP_FULL_SYNC_INTERVAL", 0
        ),
    }


def split_config(text: str) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """Split radicale.conf into our `[visio]` values and Radicale's own sections."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(text)
    ours = dict(parser[SECTION]) if parser.has_section(SECTION) else {}
    radicale = {s: dict(parser[s]) for s in parser.sections() if s != SECTION}
    return ours, radicale


def config_path(env: Mapping[str, str]) -> Path:
    return Path(env.get("VISIO_CONFIG", "radicale.conf")).expanduser().absolute()


def load(env: Mapping[str, str]) -> tuple[Settings, dict[str, dict[str, str]]]:
    """Settings and Radicale's own sections, from $VISIO_CONFIG (may be absent) and env."""
    path = config_path(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    except OSError as e:
        raise SettingsError(f"cannot read the configuration file {path}: {e}") from e
    try:
        ours, radicale = split_config(text)
    except configparser.Error as e:
        raise SettingsError(f"{path} is not a valid configuration file: {e}") from e
    return resolve(ours, env), radicale
