"""A small signed API on the CalDAV side for the backend (it never writes calendar files).

POST /.visio/partstat {"owner", "uid", "address", "partstat"} records an
attendee's answer (an RSVP link followed in a mail) on the organizer's copy;
"partstat": null saves the copy again so its SCHEDULE-STATUS shows a message
that failed for good (the mail worker calls it).
Requests carry X-Visio-Signature: HMAC-SHA256 of the body under the server key.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from radicale import storage as radicale_storage

from caldav_plugin import services
from caldav_plugin.writer import EventWriter
from visio_core import tokens

log = logging.getLogger("visio.internal")
PARTSTATS = {"ACCEPTED", "TENTATIVE", "DECLINED"}
MAX_BODY = 16_384


def handle(
    storage: radicale_storage.BaseStorage,
    environ: Mapping[str, Any],
    start_response: Callable[..., Any],
) -> Iterable[bytes]:
    def answer(code: str, payload: dict[str, Any]) -> Iterable[bytes]:
        body = json.dumps(payload).encode()
        start_response(
            code, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]

    if environ.get("PATH_INFO") != "/.visio/partstat" or environ.get("REQUEST_METHOD") != "POST":
        return answer("404 Not Found", {"error": "not found"})
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = -1
    if not 0 < length <= MAX_BODY:
        return answer("400 Bad Request", {"error": "bad length"})
    body = environ["wsgi.input"].read(length)
    key = services.get().key
    given = environ.get("HTTP_X_VISIO_SIGNATURE", "")
    if not hmac.compare_digest(given, tokens.sign(key, body)):
        log.warning("internal API call with a bad signature refused")
        return answer("403 Forbidden", {"error": "bad signature"})
    try:
        req = json.loads(body)
        owner, uid, address = str(req["owner"]), str(req["uid"]), str(req["address"]).lower()
        partstat = None if req["partstat"] is None else str(req["partstat"]).upper()
    except (ValueError, KeyError, TypeError):
        return answer("400 Bad Request", {"error": "bad request"})
    if partstat is not None and partstat not in PARTSTATS:
        return answer("400 Bad Request", {"error": "unknown answer"})
    with storage.acquire_lock("w", owner):
        writer = EventWriter(storage)
        with writer.db.transaction():
            found = writer.scheduler.set_partstat(owner, uid, address, partstat)
    return answer("200 OK", {"updated": found})
