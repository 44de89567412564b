"""A small signed API on the CalDAV side for the backend (it never writes calendar files).

POST /.visio/partstat {"owner", "uid", "address", "partstat"} records an
attendee's answer (an RSVP link followed in a mail) on the organizer's copy;
"partstat": null saves the copy again so its SCHEDULE-STATUS shows a message
that failed for good (the mail worker calls it).
Requests carry X-Visio-Signature: HMAC-SHA256 of the body under the server key.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from radicale import storage as radicale_storage

from caldav_plugin import services
from caldav_plugin.writer import EventWriter
from visio_core import ical, itip, recurrence, tokens

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

    route = environ.get("PATH_INFO")
    if route not in ("/.visio/partstat", "/.visio/busy") or environ.get("REQUEST_METHOD") != "POST":
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
    if route == "/.visio/busy":
        try:
            details = busy_details(storage, json.loads(body))
        except (ValueError, KeyError, TypeError):
            return answer("400 Bad Request", {"error": "bad request"})
        return answer("200 OK", {"busy": details})
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


def busy_details(
    storage: radicale_storage.BaseStorage, req: Mapping[str, Any]
) -> list[dict[str, str]]:
    """The portal's overlap warnings with titles (only when VISIO_SHOW_BUSY_TITLES allows).

    {"addresses": [...], "start": ISO, "end": ISO, "exclude_uid": UID} -> each
    busy occurrence of those people: address, start, end, title, organizer.
    The meeting being edited (exclude_uid) does not count against itself.
    """
    start = dt.datetime.fromisoformat(str(req["start"]))
    end = dt.datetime.fromisoformat(str(req["end"]))
    if start.tzinfo is None or end <= start or end - start > dt.timedelta(days=370):
        raise ValueError("bad range")
    exclude = str(req.get("exclude_uid", ""))
    accounts = services.get().accounts
    found: list[dict[str, str]] = []
    for address in [str(a).lower() for a in req["addresses"]][:200]:
        account = accounts.by_address(address)
        if account is None or account.disabled:
            continue
        with storage.acquire_lock("r", account.login):
            for col in storage.discover(f"/{account.login}/", depth="1"):
                if not isinstance(col, radicale_storage.BaseCollection) or col.tag != "VCALENDAR":
                    continue
                for item in col.get_all():
                    if item.component_name != "VEVENT" or item.uid == exclude:
                        continue
                    found += _busy_of(item.serialize(), address, start, end)
    return found


def _busy_of(text: str, address: str, start: dt.datetime, end: dt.datetime) -> list[dict[str, str]]:
    try:
        cal = ical.parse(text)
        occurrences = recurrence.between(cal, start, end)
    except Exception:  # one odd event must not hide the others
        log.warning("busy details skipped an unreadable event of %s", address)
        return []
    out = []
    for occ in occurrences:
        s, e = occ["DTSTART"].dt, occ.get("DTEND")
        if not isinstance(s, dt.datetime) or str(occ.get("TRANSP", "")).upper() == "TRANSPARENT":
            continue
        if str(occ.get("STATUS", "")).upper() == "CANCELLED":
            continue
        organizer = occ.get("ORGANIZER")
        name = str(organizer.params.get("CN", "")) if organizer is not None else ""
        who = itip.address_of(organizer) if organizer is not None else ""
        out.append(
            {
                "address": address,
                "start": s.astimezone(dt.UTC).isoformat(),
                "end": (e.dt if e is not None else s).astimezone(dt.UTC).isoformat(),
                "title": str(occ.get("SUMMARY", "")),
                "organizer": f"{name} ({who})" if name and who else name or who,
            }
        )
    return out
