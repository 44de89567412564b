"""SIP digest authentication (RFC 2617 / RFC 7616 with MD5, what trunks still use), pure.

Nonces are stateless: `<time>.<random>.<HMAC(key, time.random)>`, so a flood
of unauthenticated INVITEs costs no memory; a nonce is accepted for NONCE_TTL.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

NONCE_TTL = 300.0


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def new_nonce(key: bytes, now: float) -> str:
    body = f"{int(now)}.{secrets.token_hex(8)}"
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()[:32]
    return f"{body}.{mac}"


def nonce_valid(key: bytes, nonce: str, now: float) -> bool:
    stamp, _, rest = nonce.partition(".")
    rand, _, mac = rest.partition(".")
    if not stamp.isdigit() or not rand or not mac:
        return False
    expected = hmac.new(key, f"{stamp}.{rand}".encode(), hashlib.sha256).hexdigest()[:32]
    return hmac.compare_digest(mac, expected) and 0 <= now - int(stamp) <= NONCE_TTL


def challenge(realm: str, nonce: str) -> str:
    return f'Digest realm="{realm}", nonce="{nonce}", algorithm=MD5, qop="auth"'


def parse_credentials(value: str) -> dict[str, str]:
    """The parameters of an `Authorization: Digest ...` header (empty if not digest)."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest" or len(rest) > 2048:
        return {}
    params: dict[str, str] = {}
    i = 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        name = rest[i:eq].strip(" ,").lower()
        j = eq + 1
        if j < len(rest) and rest[j] == '"':
            end = rest.find('"', j + 1)
            if end < 0:
                return {}
            params[name] = rest[j + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", j)
            end = len(rest) if end < 0 else end
            params[name] = rest[j:end].strip()
            i = end + 1
    return params


def expected_response(
    params: dict[str, str], method: str, user: str, password: str, realm: str
) -> str:
    ha1 = _md5(f"{user}:{realm}:{password}")
    ha2 = _md5(f"{method}:{params.get('uri', '')}")
    nonce = params.get("nonce", "")
    if params.get("qop"):
        nc, cnonce, qop = params.get("nc", ""), params.get("cnonce", ""), params["qop"]
        return _md5(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")
    return _md5(f"{ha1}:{nonce}:{ha2}")


def verify(
    header: str,
    method: str,
    user: str,
    password: str,
    realm: str,
    key: bytes,
    now: float,
) -> bool:
    """Whether `header` proves knowledge of the password, with a fresh nonce of ours."""
    params = parse_credentials(header)
    if not params or not user or not password:
        return False
    if params.get("username") != user or params.get("realm") != realm:
        return False
    if params.get("algorithm", "MD5").upper() != "MD5":
        return False
    if params.get("qop") not in (None, "auth"):
        return False
    if not nonce_valid(key, params.get("nonce", ""), now):
        return False
    wanted = expected_response(params, method, user, password, realm)
    return hmac.compare_digest(wanted, params.get("response", ""))
