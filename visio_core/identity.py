"""Who is joining: the link's owner if the link is personal, an account, or a guest name.

`LinkDirectory` answers, for a token's hash, the room and, for a personal link
(one per invited attendee, written with the invitations), the person. A personal
link of someone whose account was disabled (they left) answers like no link.

A participant let in once gets a resume token (HMAC under the server key) so a
reload or a backend restart puts them straight back, without the lobby.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Protocol

from visio_core.accounts import Account, Accounts
from visio_core.links import Links
from visio_core.registry import Registry, Room

RESUME_SECONDS = 12 * 3600
MAX_NAME = 64


@dataclass(frozen=True)
class Person:
    name: str
    login: str = ""  # set when the person proved an account
    email: str = ""


@dataclass(frozen=True)
class Admission:
    room: Room
    person: Person | None  # known from the link itself: joins directly under that name


class LinkDirectory(Protocol):
    def lookup(self, token_hash: str) -> Admission | None: ...


class RoomLinks:
    """The room's own link (names nobody) and attendees' personal links (name them)."""

    def __init__(self, registry: Registry, links: Links, accounts: Accounts) -> None:
        self.registry = registry
        self.links = links
        self.accounts = accounts

    def lookup(self, token_hash: str) -> Admission | None:
        room = self.registry.by_token_hash(token_hash)
        if room is not None:
            return Admission(room, None)
        guest = self.links.guest(token_hash)
        if guest is None:
            return None
        room = self.registry.by_id(guest.room_id)
        if room is None:
            return None
        account = self.accounts.by_address(guest.address)
        if account is not None and account.disabled:
            return None
        # An address of an account is that account: its name, whatever CN the event gave.
        name = (account.name if account else "") or guest.name or guest.address
        login = account.login if account is not None else ""
        return Admission(room, Person(clean_name(name) or guest.address, login, guest.address))


def clean_name(value: object) -> str:
    """A display name as typed: one line, trimmed, bounded; empty if unusable."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return "".join(c for c in text if c.isprintable())[:MAX_NAME]


def is_invited(accounts: Accounts, account: Account, room: Room, addresses: set[str]) -> bool:
    """The organizer, or an attendee whose address belongs to this account."""
    if account.login == room.owner or account.email.lower() in addresses:
        return True
    for address in addresses:
        holder = accounts.by_address(address)
        if holder is not None and holder.login == account.login:
            return True
    return False


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, label: bytes, data: dict[str, object]) -> str:
    body = json.dumps(data, separators=(",", ":")).encode()
    mac = hmac.new(key, label + b"\x1f" + body, hashlib.sha256).digest()[:16]
    return _b64(body) + "." + _b64(mac)


def _verified(
    key: bytes, label: bytes, token: object, room_id: str
) -> tuple[dict[str, object], float] | None:
    """(body, age in seconds) of a token we signed under `label` for this room."""
    if not isinstance(token, str) or token.count(".") != 1 or len(token) > 1024:
        return None
    body_text, mac_text = token.split(".")
    try:
        body, mac = _unb64(body_text), _unb64(mac_text)
        expected = hmac.new(key, label + b"\x1f" + body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return None
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("r") != room_id:
            return None
        age = time.time() - int(str(data.get("t", 0)))
    except (ValueError, TypeError):
        return None
    return data, age


def resume_token(key: bytes, room_id: str, participant_id: str, person: Person) -> str:
    return _sign(
        key,
        b"resume",
        {
            "r": room_id,
            "p": participant_id,
            "n": person.name,
            "l": person.login,
            "t": int(time.time()),
        },
    )


def check_resume(key: bytes, room_id: str, token: object) -> tuple[str, Person] | None:
    """(participant id, person) if `token` was issued by us for this room and is fresh."""
    found = _verified(key, b"resume", token, room_id)
    if found is None or found[1] > RESUME_SECONDS:
        return None
    data = found[0]
    return str(data["p"]), Person(name=clean_name(data.get("n")), login=str(data.get("l", "")))


SIGNED_IN_SECONDS = 60  # the front checked the password just before handing the join over


def signed_in_token(key: bytes, room_id: str, login: str) -> str:
    """The front's word to a media worker: this socket proved `login`'s password."""
    return _sign(key, b"signed-in", {"r": room_id, "l": login, "t": int(time.time())})


def check_signed_in(key: bytes, room_id: str, token: object) -> str | None:
    """The login a fresh `signed_in_token` for this room names, else None."""
    found = _verified(key, b"signed-in", token, room_id)
    if found is None or not 0 <= found[1] <= SIGNED_IN_SECONDS:
        return None
    login = found[0].get("l")
    return login if isinstance(login, str) and login else None


ROUTE_SECONDS = 60  # a node hands a socket to another node right after deciding it


def route_token(key: bytes, room_id: str, node: str) -> str:
    """One node's word to another: "this room is placed on you; host it, do not route it"."""
    return _sign(key, b"route", {"r": room_id, "n": node, "t": int(time.time())})


def check_route(key: bytes, room_id: str, node: str, token: object) -> bool:
    """True for a fresh `route_token` for this room naming this node (every node has the key)."""
    found = _verified(key, b"route", token, room_id)
    return found is not None and -5 <= found[1] <= ROUTE_SECONDS and found[0].get("n") == node
