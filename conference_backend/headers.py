"""Security headers for every response of the web backend, set in one middleware.

Every HTML page gets a Content-Security-Policy fitting what it loads: the
portal, RSVP, /caldav and error pages run only our own scripts and styles; the
room page (/j/) also plays camera and microphone streams and talks to its
WebSocket. Nothing may frame a page (clickjacking), no page is sniffed as
another type, and no address leaks through the Referer header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler

from conference_backend import keys
from conference_backend.join import not_found

_COMMON = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
PAGE_POLICY = _COMMON + "; connect-src 'self'"


def room_policy(public_url: str) -> str:
    """The room page: media streams (mediastream:, blob:) and its WebSocket on our host.

    'self' covers ws:/wss: to the same host for current browsers (CSP 3); the
    public host is named too for the others.
    """
    parts = urlsplit(public_url)
    socket = ("wss://" if parts.scheme == "https" else "ws://") + parts.netloc
    return (
        _COMMON.replace("img-src 'self' data:", "img-src 'self' data: blob:")
        + f"; connect-src 'self' {socket}; media-src 'self' blob: mediastream:"
        + "; worker-src 'self' blob:"
    )


def _policy(request: web.Request) -> str:
    if request.path.startswith("/j/"):
        return room_policy(request.app[keys.SETTINGS].public_url)
    return PAGE_POLICY


def _apply(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if response.content_type == "text/html":
        headers["Content-Security-Policy"] = _policy(request)
        headers.setdefault("X-Frame-Options", "DENY")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPNotFound:
        response = not_found(request)  # the one 404 page, whatever answered 404
    except web.HTTPException as e:  # redirects, 403s…: raised, they carry headers too
        _apply(request, e)
        raise
    _apply(request, response)
    return response
