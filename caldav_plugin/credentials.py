"""The request's Authorization and charset, checked before Radicale reads them.

Radicale 3.9 decodes `Basic` credentials unguarded (app/__init__.py,
`_handle_request`): a value that is not base64, has broken padding, holds no
colon or is not ASCII raises, and the request ends in a 500 with a traceback.
It also decodes them, and every body, with the charset the Content-Type names,
so an unknown charset raises too. The application asks here first.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from collections.abc import Callable, Mapping
from typing import Any

SCHEME = "Basic"  # Radicale's own test: case-sensitive, a prefix of the header


def _charset_as_written(content_type: str) -> str | None:
    if "charset=" not in content_type:
        return None
    return content_type.split("charset=")[1].split(";")[0].strip()  # as Radicale reads it


def declared_charset(environ: Mapping[str, Any]) -> str | None:
    """The charset the Content-Type names, unquoted (RFC 9110 allows `charset="utf-8"`)."""
    written = _charset_as_written(str(environ.get("CONTENT_TYPE") or ""))
    return written.strip('"').strip() if written is not None else None


def with_plain_charset(environ: Mapping[str, Any]) -> Mapping[str, Any]:
    """`environ` with a quoted charset unquoted: Radicale would look the quotes up as a name."""
    content_type = str(environ.get("CONTENT_TYPE") or "")
    written = _charset_as_written(content_type)
    if written is None or not written.startswith('"'):
        return environ
    plain = content_type.replace(f"charset={written}", f"charset={declared_charset(environ)}", 1)
    return {**environ, "CONTENT_TYPE": plain}


def unknown_charset(environ: Mapping[str, Any]) -> str | None:
    """The charset named by the Content-Type when Python has no codec for it."""
    charset = declared_charset(environ)
    if charset is None:
        return None
    try:
        codecs.lookup(charset)
    except LookupError:
        return charset
    return None


def basic_problem(authorization: str, decode: Callable[[bytes], str]) -> str | None:
    """Why Radicale could not read these Basic credentials, or None when it can.

    Mirrors Radicale's own steps (lenient base64, `decode` as Radicale's
    decode_request, then login:password); a header of another scheme is not
    ours to judge: Radicale ignores it and the request is anonymous.
    """
    if not authorization.startswith(SCHEME):
        return None
    value = authorization[len(SCHEME) :].strip()
    try:
        raw = base64.b64decode(value.encode("ascii"))
    except UnicodeEncodeError:
        return "the credentials are not ASCII"
    except (binascii.Error, ValueError):
        return "the credentials are not base64"
    try:
        text = decode(raw)
    except (UnicodeDecodeError, LookupError):
        return "the credentials are not text"
    if ":" not in text:
        return "no colon between login and password"
    return None
