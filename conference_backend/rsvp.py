"""RSVP without a calendar app: the Accept / Tentative / Decline links of an invitation.

GET shows what will be recorded and a button: mail scanners and link
previewers follow links, so only the POST changes anything. The answer is
written on the organizer's copy through the CalDAV side's signed API.
"""

from __future__ import annotations

import json
import logging

import aiohttp
import aiohttp_jinja2
from aiohttp import web

from conference_backend import keys
from conference_backend.i18n import PAGES, request_language
from visio_core import tokens

log = logging.getLogger("visio.rsvp")
ANSWERS = ("ACCEPTED", "TENTATIVE", "DECLINED")
TEXT = {
    "fr": {
        "title": "Votre réponse",
        "ACCEPTED": "J'accepte",
        "TENTATIVE": "Peut-être",
        "DECLINED": "Je refuse",
        "confirm": "Confirmer",
        "done": "Merci, votre réponse a été transmise à l'organisateur : {answer}.",
        "failed": "Votre réponse n'a pas pu être enregistrée. Réessayez dans un instant.",
        "unknown": "Ce lien de réponse n'existe pas ou n'est plus valable.",
    },
    "en": {
        "title": "Your answer",
        "ACCEPTED": "Accept",
        "TENTATIVE": "Tentative",
        "DECLINED": "Decline",
        "confirm": "Confirm",
        "done": "Thank you, your answer was passed on to the organizer: {answer}.",
        "failed": "Your answer could not be recorded. Please try again in a moment.",
        "unknown": "This answer link does not exist or is no longer valid.",
    },
}
KEY = web.AppKey("server_key", bytes)


def _page(request: web.Request, message: str, status: int = 200, **extra: object) -> web.Response:
    lang = request_language(request)
    t = TEXT[lang]
    response = aiohttp_jinja2.render_template(
        "rsvp.html",
        request,
        {"lang": lang, "t": PAGES[lang], "r": t, "message": message, **extra},
        status=status,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


async def rsvp(request: web.Request) -> web.StreamResponse:
    token = request.match_info["token"]
    lang = request_language(request)
    t = TEXT[lang]
    found = tokens.read_rsvp_token(request.app[KEY], token)
    if found is None:
        return _page(request, t["unknown"], status=404)
    owner, uid, address = found
    if request.method == "GET":
        answer = request.query.get("answer", "ACCEPTED").upper()
        return _page(
            request, "", answers=ANSWERS, chosen=answer if answer in ANSWERS else "ACCEPTED"
        )
    form = await request.post()
    answer = str(form.get("answer", "")).upper()
    if answer not in ANSWERS:
        return _page(request, t["failed"], status=400)
    settings = request.app[keys.SETTINGS]
    body = json.dumps({"owner": owner, "uid": uid, "address": address, "partstat": answer}).encode()
    try:
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                settings.caldav_url + ".visio/partstat",
                data=body,
                headers={"X-Visio-Signature": tokens.sign(request.app[KEY], body)},
                timeout=aiohttp.ClientTimeout(total=20),
            ) as resp,
        ):
            # None: the organizer deleted the event meanwhile; say so rather than "thanks".
            ok = resp.status == 200 and (await resp.json()).get("updated") is not None
    except (aiohttp.ClientError, TimeoutError) as e:
        log.warning("RSVP for %s could not reach the CalDAV server: %s", uid, e)
        ok = False
    if not ok:
        return _page(request, t["failed"], status=503)
    log.info("RSVP %s for %s by %s", answer, uid, address)
    return _page(request, t["done"].format(answer=t[answer]))


def setup(app: web.Application, key: bytes) -> None:
    app[KEY] = key
    app.router.add_route("GET", "/rsvp/{token}", rsvp)
    app.router.add_route("POST", "/rsvp/{token}", rsvp)
