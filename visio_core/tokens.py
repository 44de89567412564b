"""Room identities, join tokens and phone room numbers.

A join token is derived from the room id with HMAC under a 256-bit server key
drawn from `secrets`. The registry stores only its SHA-256 hash; the link can
still be written again into an event that a client re-PUT without our
properties, and `visio rooms rebuild` recovers every link from the calendars
and the key alone.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import secrets
from pathlib import Path

KEY_BYTES = 32
TOKEN_BYTES = 20  # 160 bits, above the 128-bit floor
ROOM_NUMBER_DIGITS = 9


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_room_id() -> str:
    """Public, non-secret room name written into events (128 random bits)."""
    return secrets.token_hex(16)


def new_room_number(digits: int = ROOM_NUMBER_DIGITS) -> str:
    """Digits only, no leading zero, so phones and PBXs never strip it."""
    if digits < ROOM_NUMBER_DIGITS:
        raise ValueError(f"room numbers need at least {ROOM_NUMBER_DIGITS} digits")
    low = 10 ** (digits - 1)
    return str(low + secrets.randbelow(9 * low))


def is_room_number(value: str) -> bool:
    return len(value) >= ROOM_NUMBER_DIGITS and value.isdigit() and value[0] != "0"


def derive_token(key: bytes, purpose: str, *parts: str) -> str:
    """A URL-safe token bound to `purpose` and `parts` (e.g. "room", room_id)."""
    message = "\x1f".join((purpose, *parts)).encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()[:TOKEN_BYTES]
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def room_token(key: bytes, room_id: str) -> str:
    return derive_token(key, "room", room_id)


def room_claim(key: bytes, room_id: str, owner: str, uid: str) -> str:
    """The server's mark that `room_id` belongs to `owner`'s event `uid`.

    Written into the organizer's copy only. A room id seen in any other copy (an
    invitation, an attendee's copy, a forged event) comes without a mark that
    verifies for that copy's owner and UID, so it grants nothing, not even at a
    `rooms rebuild` from the calendars alone.
    """
    return derive_token(key, "room-claim", room_id, owner, uid)


def check_room_claim(key: bytes, room_id: str, owner: str, uid: str, claim: str) -> bool:
    return hmac.compare_digest(room_claim(key, room_id, owner, uid), claim.strip())


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def load_or_create_key(path: Path) -> bytes:
    """The server key, created once with mode 0600; losing it changes every link."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = new_key()
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_key(path)  # another process won the race
        with os.fdopen(fd, "wb") as f:
            f.write(key)
            f.flush()
            os.fsync(f.fileno())
        return key
    if len(data) != KEY_BYTES:
        raise RuntimeError(f"{path} is not a {KEY_BYTES}-byte key; restore it from backup")
    return data


def attendee_token(key: bytes, room_id: str, address: str) -> str:
    """An attendee's personal join token: the room knows who joins."""
    return derive_token(key, "attendee", room_id, address.lower())


def rsvp_token(key: bytes, owner: str, uid: str, address: str) -> str:
    """One attendee's Accept/Tentative/Decline token for one event: signed, not stored.

    It carries what it is about, so a 5,000-attendee save writes no row for it;
    an attendee removed since finds nothing to answer on the organizer's copy.
    """
    body = json.dumps([owner, uid, address.lower()], separators=(",", ":")).encode()
    payload = base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")
    return payload + "." + derive_token(key, "rsvp", payload)


def read_rsvp_token(key: bytes, token: str) -> tuple[str, str, str] | None:
    """(owner, uid, address) of a genuine RSVP token, else None."""
    payload, _, signature = token.partition(".")
    if not payload or len(token) > 2048:
        return None
    if not hmac.compare_digest(signature, derive_token(key, "rsvp", payload)):
        return None
    try:
        owner, uid, address = json.loads(
            base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        )
    except (ValueError, TypeError):
        return None
    return str(owner), str(uid), str(address)


RESET_PREFIX = "r2."  # links of the old format (login.expires.sig) find no match


def reset_token(key: bytes, login: str, expires: int, stamp: str) -> str:
    """A password reset link's token: login (base64, so any login fits), expiry, signature.

    `stamp` names the current password hash, so the link works once.
    """
    payload = base64.urlsafe_b64encode(login.encode()).rstrip(b"=").decode("ascii")
    signature = derive_token(key, "reset-v2", login, str(expires), stamp)
    return f"{RESET_PREFIX}{payload}.{expires}.{signature}"


def read_reset_token(token: str) -> tuple[str, int, str] | None:
    """(login, expires, signature) of a well-formed reset token, not yet verified."""
    if not token.startswith(RESET_PREFIX) or len(token) > 512:
        return None
    parts = token[len(RESET_PREFIX) :].split(".")
    if len(parts) != 3:
        return None
    payload, expires, signature = parts
    if not payload or not expires.isdigit() or not signature:
        return None
    try:
        padded = payload + "=" * (-len(payload) % 4)
        login = base64.b64decode(padded, altchars=b"-_", validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    return (login, int(expires), signature) if login else None


def check_reset_token(key: bytes, login: str, expires: int, stamp: str, signature: str) -> bool:
    expected = derive_token(key, "reset-v2", login, str(expires), stamp)
    return hmac.compare_digest(signature, expected)


def sign(key: bytes, body: bytes) -> str:
    """Signature of a call from the backend to the CalDAV side's internal API."""
    return hmac.new(key, b"internal-api\x1f" + body, hashlib.sha256).hexdigest()


SERVICE_PREFIX = "visio-service:"


def service_password(key: bytes, login: str, now: float, ttl: int = 300) -> str:
    """A short-lived CalDAV password for `login`, minted by the backend (the portal).

    The portal writes through CalDAV as the signed-in user, so the same plugin,
    rights and scheduling apply as for any calendar app; it never holds the
    user's real password after sign-in.
    """
    expires = str(int(now) + ttl)
    return SERVICE_PREFIX + expires + ":" + derive_token(key, "caldav-as", login, expires)


def check_service_password(key: bytes, login: str, password: str, now: float) -> bool:
    if not password.startswith(SERVICE_PREFIX):
        return False
    expires, _, signature = password[len(SERVICE_PREFIX) :].partition(":")
    if not expires.isdigit() or int(expires) < now:
        return False
    return hmac.compare_digest(signature, derive_token(key, "caldav-as", login, expires))


_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")


def valid_token(token: str) -> bool:
    """The shape of a join token (what a link carries); checked before any lookup answers."""
    return bool(_TOKEN_RE.match(token))


def new_participant_id() -> str:
    """A participant's id in a room (also the id of an instant meeting's first entrant)."""
    return secrets.token_hex(6)
