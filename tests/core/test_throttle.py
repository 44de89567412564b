"""The password throttle's counting (visio_core/throttle.py) and the vouched client address
(visio_core/client_address.py): pure, time passed in."""

from __future__ import annotations

import ipaddress
import threading

import pytest

from visio_core import client_address
from visio_core.settings import SettingsError, resolve
from visio_core.throttle import Policy, Slots, Throttle, address_key, mask

POLICY = Policy(login_max_failures=3, address_max_failures=5, window=60, lockout=30)


def test_a_login_locks_at_its_limit_for_the_lockout_then_opens_again() -> None:
    t = Throttle(POLICY)
    assert not t.failed("alice", "10.0.0.1", 0).locked_login
    assert not t.failed("alice", "10.0.0.2", 1).locked_login
    assert t.locked("alice", "10.0.0.3", 2) == 0
    third = t.failed("Alice", "10.0.0.3", 2)  # logins count case-insensitively
    assert third.locked_login and third.login_failures == 3
    assert t.locked("alice", "192.0.2.9", 3) == 29  # from any address
    assert t.locked("bob", "192.0.2.9", 3) == 0
    assert t.locked("alice", "192.0.2.9", 32) == 0
    # After the lockout the count starts again.
    assert not t.failed("alice", "10.0.0.1", 33).locked_login


def test_failures_leave_the_window() -> None:
    t = Throttle(POLICY)
    t.failed("alice", "10.0.0.1", 0)
    t.failed("alice", "10.0.0.1", 1)
    assert t.failed("alice", "10.0.0.1", 60.5).login_failures == 2  # the first has left
    assert not t.locked("alice", "10.0.0.1", 60.5)


def test_an_address_locks_for_every_login() -> None:
    t = Throttle(POLICY)
    for i in range(4):
        assert not t.failed(f"user{i}", "10.0.0.1", i).locked_address
    assert t.failed("user4", "10.0.0.1", 4).locked_address
    assert t.locked("someone-else", "10.0.0.1", 5) == 29
    assert t.locked("someone-else", "10.0.0.2", 5) == 0


def test_a_success_forgets_that_address_only_and_never_the_address_count() -> None:
    t = Throttle(POLICY)
    t.failed("alice", "10.0.0.1", 0)
    t.failed("alice", "10.0.0.2", 1)
    t.succeeded("alice", "10.0.0.1", 2)
    assert t.failed("alice", "10.0.0.3", 3).login_failures == 2  # 10.0.0.2's is kept
    # The address's own count is not reset by a valid account signing in from it.
    t.succeeded("mallory", "10.0.0.2", 4)
    assert t.failed("bob", "10.0.0.2", 5).address_failures == 2


def test_ipv6_clients_count_per_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == address_key("2001:db8:1:2:bbbb::2")
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:192.0.2.7") == "192.0.2.7"
    assert address_key("192.0.2.7") == "192.0.2.7"
    assert address_key("") == "unknown"


def test_mask() -> None:
    assert mask("jean.dupont") == "j…t"
    assert mask("jo") == "j…"
    assert mask("") == "…"


def test_slots_bound_the_checks_at_once() -> None:
    slots = Slots(Policy(checks_at_once=2, check_wait=0))
    assert slots.acquire() and slots.acquire()
    assert not slots.acquire()  # no wait configured: busy at once
    slots.release()
    assert slots.acquire()


def test_a_slot_freed_during_the_wait_is_taken() -> None:
    slots = Slots(Policy(checks_at_once=1, check_wait=60))
    assert slots.acquire()
    taken = threading.Event()

    def waiter() -> None:
        if slots.acquire():
            taken.set()

    thread = threading.Thread(target=waiter)
    thread.start()
    slots.release()
    thread.join(timeout=60)
    assert taken.is_set()


def test_settings() -> None:
    default = resolve({}, {}).throttle
    assert (default.login_max_failures, default.address_max_failures) == (10, 50)
    assert (default.window, default.lockout, default.checks_at_once) == (900, 900, 4)
    s = resolve({"login_max_failures": "3"}, {"VISIO_PASSWORD_CHECKS_AT_ONCE": "1"}).throttle
    assert (s.login_max_failures, s.checks_at_once) == (3, 1)
    with pytest.raises(SettingsError, match="VISIO_PASSWORD_CHECKS_AT_ONCE"):
        resolve({}, {"VISIO_PASSWORD_CHECKS_AT_ONCE": "0"})
    with pytest.raises(SettingsError, match="VISIO_LOGIN_LOCKOUT"):
        resolve({}, {"VISIO_LOGIN_LOCKOUT": "soon"})


KEY = bytes(32)


def test_a_vouch_holds_for_its_login_and_a_minute_only() -> None:
    value = client_address.vouch(KEY, "203.0.113.5", "room", "alice", 1000)
    assert client_address.read_vouch(KEY, value, "alice", 1030) == ("203.0.113.5", "room")
    assert client_address.read_vouch(KEY, value, "bob", 1030) is None
    assert client_address.read_vouch(KEY, value, "alice", 1061) is None
    assert client_address.read_vouch(bytes([1]) * 32, value, "alice", 1030) is None
    forged = value.replace("203.0.113.5", "198.51.100.1")
    assert client_address.read_vouch(KEY, forged, "alice", 1030) is None
    assert client_address.read_vouch(KEY, "garbage", "alice", 1030) is None


def test_forwarded_for_is_believed_from_trusted_proxies_only() -> None:
    proxies = (ipaddress.ip_network("127.0.0.1/32"),)
    assert client_address.forwarded_client("127.0.0.1", "", proxies) == "127.0.0.1"
    assert client_address.forwarded_client("127.0.0.1", "1.2.3.4, 5.6.7.8", proxies) == "5.6.7.8"
    assert client_address.forwarded_client("9.9.9.9", "5.6.7.8", proxies) == "9.9.9.9"
    assert client_address.forwarded_client("127.0.0.1", "nonsense", proxies) == "127.0.0.1"
