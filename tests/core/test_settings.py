"""settings.resolve and split_config: [visio] values, overridden by VISIO_* variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from visio_core.categories import RoomKind
from visio_core.settings import SettingsError, parse_listen, resolve, split_config


def test_defaults():
    s = resolve({}, {})
    assert s.data_dir == Path("./var").absolute()
    assert s.caldav_listen == ("127.0.0.1", 5232)
    assert s.web_listen == ("127.0.0.1", 8080)
    assert s.public_url == "http://127.0.0.1:8080"
    assert s.join_prefix == "http://127.0.0.1:8080/j/"
    assert s.smtp_url == ""
    assert s.mail_from == "visio@localhost"
    assert s.dialin_number == ""
    assert s.language == "fr"
    assert s.early_join_minutes == 15
    assert s.ldap_uri == ""
    assert s.ldap_filter == "(objectClass=inetOrgPerson)"
    assert s.ldap_login_attribute == "uid"
    assert s.sip_listen == ""
    assert s.sip_allow == "127.0.0.0/8"
    assert s.rules.kind(["Visio"]) is RoomKind.VIDEO
    assert s.rules.kind(["Audio"]) is RoomKind.AUDIO
    assert s.rules.wants_recording(["Enregistrement"])


def test_derived_paths(tmp_path):
    s = resolve({"data_dir": str(tmp_path)}, {})
    assert s.data_dir == tmp_path
    assert s.database_path == tmp_path / "visio.sqlite3"
    assert s.key_path == tmp_path / "secret.key"
    assert s.collections_dir == tmp_path / "collections"
    assert s.mail_dir == tmp_path / "mail"


def test_file_values_are_used():
    s = resolve(
        {
            "public_url": "https://visio.example.org",
            "web_listen": "0.0.0.0:9000",
            "language": "en",
            "early_join_minutes": "5",
            "dialin_number": "+33 1 23 45 67 89",
        },
        {},
    )
    assert s.public_url == "https://visio.example.org"
    assert s.web_listen == ("0.0.0.0", 9000)
    assert s.language == "en"
    assert s.early_join_minutes == 5
    assert s.dialin_number == "+33 1 23 45 67 89"


def test_environment_overrides_file_values():
    s = resolve(
        {"public_url": "https://file.example.org", "language": "en", "caldav_listen": "h:1"},
        {
            "VISIO_PUBLIC_URL": "https://env.example.org",
            "VISIO_LANGUAGE": "fr",
            "VISIO_CALDAV_LISTEN": "127.0.0.1:6000",
            "VISIO_LDAP_URI": "ldap://ldap.example.org/",
        },
    )
    assert s.public_url == "https://env.example.org"
    assert s.language == "fr"
    assert s.caldav_listen == ("127.0.0.1", 6000)
    assert s.ldap_uri == "ldap://ldap.example.org"


def test_environment_can_blank_a_file_value():
    s = resolve({"dialin_number": "+33 1 23 45 67 89"}, {"VISIO_DIALIN_NUMBER": ""})
    assert s.dialin_number == ""


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("https://visio.example.org/", "https://visio.example.org"),
        ("https://visio.example.org//", "https://visio.example.org"),
        ("  https://visio.example.org/  ", "https://visio.example.org"),
        ("https://example.org/visio/", "https://example.org/visio"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
)
def test_public_url_trailing_slash_stripped(given, expected):
    s = resolve({}, {"VISIO_PUBLIC_URL": given})
    assert s.public_url == expected
    assert s.join_prefix == expected + "/j/"


@pytest.mark.parametrize("bad", ["visio.example.org", "ftp://example.org", "//example.org"])
def test_bad_public_url(bad):
    with pytest.raises(SettingsError, match="VISIO_PUBLIC_URL must start with http"):
        resolve({}, {"VISIO_PUBLIC_URL": bad})


@pytest.mark.parametrize("given", [{}, {"VISIO_PUBLIC_URL": ""}])
def test_unset_public_url_follows_the_web_address(given):
    s = resolve({}, {"VISIO_WEB_LISTEN": "127.0.0.1:18080", **given})
    assert s.public_url == "http://127.0.0.1:18080"
    assert s.join_prefix == "http://127.0.0.1:18080/j/"


@pytest.mark.parametrize("bad", ["8080", "localhost", "host:", "host:0", "host:65536", "h:80x"])
@pytest.mark.parametrize("variable", ["VISIO_CALDAV_LISTEN", "VISIO_WEB_LISTEN"])
def test_bad_listen_values(variable, bad):
    with pytest.raises(SettingsError) as excinfo:
        resolve({}, {variable: bad})
    message = str(excinfo.value)
    assert variable in message
    assert "HOST:PORT" in message
    assert repr(bad) in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("127.0.0.1:5232", ("127.0.0.1", 5232)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        (":8080", ("127.0.0.1", 8080)),
        ("[::1]:8080", ("::1", 8080)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_good_listen_values(value, expected):
    assert parse_listen(value, "X") == expected


def test_bare_ipv6_address_without_port_is_refused():
    with pytest.raises(SettingsError, match="HOST:PORT"):
        parse_listen("::1", "VISIO_WEB_LISTEN")


def test_non_ascii_digit_port_is_a_settings_error():
    with pytest.raises(SettingsError):
        resolve({}, {"VISIO_WEB_LISTEN": "127.0.0.1:²"})


def test_ipv6_listen_gives_a_valid_url():
    s = resolve({}, {"VISIO_CALDAV_LISTEN": "[::1]:5232", "VISIO_WEB_LISTEN": "[::1]:8080"})
    assert s.caldav_url == "http://[::1]:5232/"
    assert s.web_url == "http://[::1]:8080/"


def test_listen_urls():
    s = resolve({}, {"VISIO_CALDAV_LISTEN": "127.0.0.1:5300"})
    assert s.caldav_url == "http://127.0.0.1:5300/"
    assert s.web_url == "http://127.0.0.1:8080/"


def test_negative_early_join_is_refused():
    with pytest.raises(SettingsError, match="VISIO_EARLY_JOIN_MINUTES cannot be negative"):
        resolve({}, {"VISIO_EARLY_JOIN_MINUTES": "-5"})


@pytest.mark.parametrize("bad", ["quinze", "1.5", "", "15min"])
def test_non_numeric_early_join_is_refused(bad):
    with pytest.raises(SettingsError, match="VISIO_EARLY_JOIN_MINUTES must be a whole number"):
        resolve({"early_join_minutes": bad}, {})


def test_zero_early_join_is_allowed():
    assert resolve({}, {"VISIO_EARLY_JOIN_MINUTES": "0"}).early_join_minutes == 0


def test_visible_thumbnails_default_and_override():
    assert resolve({}, {}).visible_thumbnails == 9
    assert resolve({"visible_thumbnails": "4"}, {}).visible_thumbnails == 4
    assert resolve({}, {"VISIO_VISIBLE_THUMBNAILS": "1"}).visible_thumbnails == 1


def test_bandwidth_estimates_are_trusted_unless_told_not_to():
    assert resolve({}, {}).trust_bwe is True
    assert resolve({}, {"VISIO_TRUST_BWE": ""}).trust_bwe is True
    for no in ("no", "off", "0", "False"):
        assert resolve({}, {"VISIO_TRUST_BWE": no}).trust_bwe is False


@pytest.mark.parametrize("bad", ["0", "-3", "neuf", "2.5", ""])
def test_bad_visible_thumbnails_are_refused(bad):
    with pytest.raises(SettingsError, match="VISIO_VISIBLE_THUMBNAILS"):
        resolve({}, {"VISIO_VISIBLE_THUMBNAILS": bad})


def test_dialin_without_digits_is_refused():
    with pytest.raises(SettingsError, match="VISIO_DIALIN_NUMBER"):
        resolve({}, {"VISIO_DIALIN_NUMBER": "call us"})


@pytest.mark.parametrize(
    ("given", "expected"), [("en", "en"), ("EN", "en"), ("en_GB", "en"), ("de", "fr"), ("", "fr")]
)
def test_language_falls_back_to_french(given, expected):
    assert resolve({}, {"VISIO_LANGUAGE": given}).language == expected


def test_custom_word_lists_from_config():
    s = resolve({"video_words": "Jitsi, Réunion en ligne"}, {"VISIO_AUDIO_WORDS": "Téléphone"})
    assert s.rules.kind(["jitsi"]) is RoomKind.VIDEO
    assert s.rules.kind(["reunion en ligne"]) is RoomKind.VIDEO
    assert s.rules.kind(["Visio"]) is None
    assert s.rules.kind(["telephone"]) is RoomKind.AUDIO
    assert s.rules.kind(["Audio"]) is None
    assert s.rules.wants_recording(["Recording"])


def test_settings_error_is_a_value_error():
    assert issubclass(SettingsError, ValueError)


CONFIG = """\
# comment
[visio]
public_url = https://visio.example.org/
language = en
video_words = Visio, Jitsi

[server]
max_content_length = 10000000

[auth]
delay = 1

[logging]
level = info
mask_passwords = True
"""


def test_split_config_separates_visio_from_radicale():
    ours, radicale = split_config(CONFIG)
    assert ours == {
        "public_url": "https://visio.example.org/",
        "language": "en",
        "video_words": "Visio, Jitsi",
    }
    assert set(radicale) == {"server", "auth", "logging"}
    assert radicale["server"] == {"max_content_length": "10000000"}
    assert radicale["logging"]["mask_passwords"] == "True"
    assert "visio" not in radicale
    s = resolve(ours, {})
    assert s.public_url == "https://visio.example.org"
    assert s.rules.kind(["jitsi"]) is RoomKind.VIDEO


def test_split_config_without_visio_section():
    ours, radicale = split_config("[server]\nhosts = 0.0.0.0:5232\n")
    assert ours == {}
    assert radicale == {"server": {"hosts": "0.0.0.0:5232"}}
    assert split_config("") == ({}, {})


def test_split_config_keeps_percent_signs():
    ours, _ = split_config("[visio]\nldap_filter = (cn=50%)\n")
    assert ours["ldap_filter"] == "(cn=50%)"


def test_real_radicale_conf_resolves():
    text = (Path(__file__).resolve().parents[2] / "radicale.conf").read_text(encoding="utf-8")
    ours, radicale = split_config(text)
    s = resolve(ours, {})
    assert s.public_url.startswith("http")
    assert "visio" not in radicale


def test_node_roles_and_their_errors() -> None:
    """Several machines: the settings a node needs, and what is said when one is missing."""
    base = {"VISIO_REDIS_URL": "redis://10.0.0.5:6379/0", "VISIO_NODE_NAME": "b"}
    s = resolve(
        {},
        {
            **base,
            "VISIO_CALDAV_LISTEN": "off",
            "VISIO_CALDAV_URL": "http://10.0.0.11:5232",
            "VISIO_WEB_LISTEN": "0.0.0.0:8080",
            "VISIO_SECRET_KEY_FILE": "/etc/visio/secret.key",
            "VISIO_MEDIA_WORKERS": "0",
        },
    )
    assert not s.caldav_enabled and s.caldav_url == "http://10.0.0.11:5232/"
    assert s.node.internal_url == "http://b:8080"  # listening everywhere: reached by name
    assert str(s.key_path) == "/etc/visio/secret.key" and s.media_workers == 0
    with pytest.raises(SettingsError, match="VISIO_CALDAV_URL"):
        resolve({}, {**base, "VISIO_CALDAV_LISTEN": "off"})
    with pytest.raises(SettingsError, match="needs VISIO_REDIS_URL"):
        resolve({}, {"VISIO_MEDIA_WORKERS": "0"})
    with pytest.raises(SettingsError, match="VISIO_NODE_NAME"):
        resolve({}, {"VISIO_NODE_NAME": "a/b"})
    with pytest.raises(SettingsError, match="VISIO_REDIS_URL must"):
        resolve({}, {"VISIO_REDIS_URL": "http://redis"})
