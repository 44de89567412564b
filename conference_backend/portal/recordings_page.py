"""Vos enregistrements: the organizer's recordings, to download or delete.

The files themselves are served by the recorder (/recordings/ID, to their
organizer only); this page lists them and deletes one on request, so nobody has
to wait for the retention period to remove a recording they do not want kept.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from conference_backend.portal.routes import flash, take_flash
from conference_backend.portal.session import PORTAL, check_csrf, render, session, signed_in, zone
from visio_core.accounts import Account
from visio_core.recordings import Recording, Recordings, parse_stamp


def _store(request: web.Request) -> Recordings:
    return Recordings(request.app[PORTAL].accounts().db)


def _shown(rec: Recording, tz: Any) -> dict[str, Any]:
    started = parse_stamp(rec.started_at).astimezone(tz)
    minutes = None
    if rec.ended_at:
        minutes = max(
            1, round((parse_stamp(rec.ended_at) - parse_stamp(rec.started_at)).total_seconds() / 60)
        )
    return {
        "id": rec.id,
        "title": rec.summary or "—",
        "when": started.strftime("%d.%m.%Y %H:%M"),
        "iso": started.isoformat(),
        "minutes": minutes,
        "megabytes": f"{rec.size / 1_000_000:.1f}",
        "files": sum(1 for s in rec.segments if s.path.is_file()),
        "recording": rec.state == "recording",
    }


@signed_in
async def recordings_page(request: web.Request, me: Account) -> web.StreamResponse:
    tz = zone(await session(request))
    items = [_shown(r, tz) for r in _store(request).of_owner(me.login)]
    days = request.app[PORTAL].settings.recording_days
    return await render(
        request,
        "portal/recordings.html",
        {"items": items, "days": days, "flash": await take_flash(request)},
    )


@signed_in
async def recording_delete(request: web.Request, me: Account) -> web.StreamResponse:
    await check_csrf(request)
    try:
        rec_id = int(request.match_info["id"])
    except ValueError:
        raise web.HTTPNotFound() from None
    store = _store(request)
    found = store.get(rec_id)
    if found is None or found.owner != me.login:
        raise web.HTTPNotFound()  # someone else's: the same answer as none at all
    if found.state == "recording":
        await flash(request, "recording_busy")
    else:
        store.delete(rec_id)
        await flash(request, "recording_deleted")
    raise web.HTTPSeeOther("/recordings")


def setup(app: web.Application) -> None:
    app.router.add_get("/recordings", recordings_page)
    app.router.add_post("/recordings/{id}/delete", recording_delete)
