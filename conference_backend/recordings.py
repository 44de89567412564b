"""`/recordings/{id}`: the recording's file(s), for the signed-in organizer only.

Anyone else (signed in or not, existing id or not) gets the same answer as
an unknown id: not signed in goes to the portal's sign-in page, signed in gets
the one 404 page. Nothing tells whether a recording exists.
"""

from __future__ import annotations

import html

from aiohttp import web

from conference_backend import keys
from conference_backend.join import not_found
from conference_backend.portal.session import session, user
from visio_core.recordings import Recordings


async def download(request: web.Request) -> web.StreamResponse:
    account = user(request, await session(request))
    if account is None:
        raise web.HTTPSeeOther("/login")
    try:
        rec_id = int(request.match_info["id"])
        part = int(request.match_info.get("part", "0"))
    except ValueError:
        return not_found(request)
    found = Recordings(request.app[keys.DB]).get(rec_id)
    if found is None or found.owner != account.login:
        return not_found(request)
    segments = [s for s in found.segments if s.path.is_file()]
    if not segments:
        return not_found(request)
    if part == 0 and len(segments) > 1:
        e = html.escape
        items = "".join(
            f"<li><a href='/recordings/{rec_id}/{i}'>{e(s.path.name)}</a> "
            f"({s.size // 1024} KiB)</li>"
            for i, s in enumerate(segments, start=1)
        )
        body = (
            f"<!doctype html><html><head><meta charset='utf-8'><title>{e(found.summary)}"
            f"</title></head><body><h1>{e(found.summary)}</h1><ol>{items}</ol></body></html>"
        )
        return web.Response(
            text=body, content_type="text/html", headers={"Cache-Control": "no-store"}
        )
    index = max(part, 1) - 1
    if index >= len(segments):
        return not_found(request)
    segment = segments[index]
    return web.FileResponse(
        segment.path,
        headers={
            "Content-Type": "video/mp4",
            "Content-Disposition": f'attachment; filename="{segment.path.name}"',
            "Cache-Control": "no-store",
        },
    )


def setup(app: web.Application) -> None:
    app.router.add_get("/recordings/{id}", download)
    app.router.add_get("/recordings/{id}/{part}", download)
