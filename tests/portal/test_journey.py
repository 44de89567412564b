"""Journey 4 through the labels: sign in, plan a weekly meeting, warnings, edit, delete, instant.

After each step the stored event is read back through CalDAV (as the organizer)
and the invitations are read from the real SMTP server.
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import icalendar
import requests
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.pages import wait_state
from tests.e2e.conftest import PASSWORD, DavUser
from tests.invitations.mail import Mail, Sink
from tests.portal.conftest import SUPPORT_PHONE, ZONE, Person, person, shot, sign_in
from tests.support import ics
from tests.support.stack import Stack, wait_for

PARIS = ZoneInfo(ZONE)


def next_monday() -> dt.date:
    today = dt.datetime.now(PARIS).date()
    return today + dt.timedelta(days=7 - today.weekday())


def stored(stack: Stack, who: Person, href: str) -> requests.Response:
    return requests.get(stack.caldav_url + href.lstrip("/"), auth=(who.login, PASSWORD), timeout=30)


def stored_cal(stack: Stack, who: Person, href: str) -> icalendar.Calendar:
    r = stored(stack, who, href)
    assert r.status_code == 200, r.status_code
    return icalendar.Calendar.from_ical(r.text)


def master_of(cal: icalendar.Calendar) -> icalendar.Event:
    return next(e for e in cal.walk("VEVENT") if "RECURRENCE-ID" not in e)


def href_of(page: Page) -> str:
    return parse_qs(urlsplit(page.url).query)["href"][0]


def busy_bob(stack: Stack, bob: Person, day: dt.date) -> None:
    """Bob already has his own meeting at 10:00 on the first Monday."""
    user = DavUser(stack, bob.login, PASSWORD, "")
    user.calendar = user.make_calendar("calendar")
    stamp = day.strftime("%Y%m%d")
    body = ics.event(
        start=f"{stamp}T100000",
        end=f"{stamp}T110000",
        tz=ZONE,
        categories="Visio",
        summary="Réunion de Bob",
        uid="bob-own-meeting",
    )
    assert user.put("own.ics", body).status_code in (201, 204)


def methods(mails: list[Mail], to: str) -> list[str]:
    return [m.method for m in mails if m.to == to]


def fill_plan(page: Page, first: dt.date, last: dt.date, invitees: list[str]) -> None:
    page.get_by_label("Sujet").fill("Conseil municipal")
    page.get_by_label("Date", exact=True).fill(first.isoformat())
    page.get_by_label("Heure de début").fill("10:00")
    page.get_by_label("Durée").fill("90")
    expect(page.get_by_label("Heure de fin")).to_have_value("11:30")  # in step with Durée
    page.get_by_label("Durée").fill("60")
    expect(page.get_by_label("Heure de fin")).to_have_value("11:00")
    page.get_by_label("Périodicité").check()
    page.get_by_label("Lun", exact=True).check()
    page.get_by_label("Jeu", exact=True).check()
    page.get_by_label("Dernier jour").fill(last.isoformat())
    page.get_by_label("Invités", exact=True).fill("\n".join(invitees))
    page.get_by_label("Visioconférence").check()
    page.get_by_label("Enregistrement").check()
    page.get_by_label("Description").fill("Ordre du jour : budget")


def test_plan_warn_edit_delete_and_instant(
    stack: Stack, sink: Sink, context: BrowserContext
) -> None:
    alice, bob, carol = (person(stack, n) for n in ("Alice Martin", "Bob Durand", "Carole Le Goff"))
    first = next_monday()
    busy_bob(stack, bob, first)
    page = context.new_page()

    # Sign in; help link and support phone on the page.
    page.goto(stack.web_url)
    expect(page.get_by_role("link", name="Besoin d'aide ?")).to_be_visible()
    expect(page.get_by_text(SUPPORT_PHONE)).to_be_visible()
    shot(page, "01-sign-in")
    sign_in(page, stack, alice)
    shot(page, "02-home")

    # Planifier une réunion: required fields are checked next to the field.
    page.get_by_role("link", name="Planifier une réunion").first.click()
    page.get_by_label("Sujet").fill("")
    page.get_by_role("button", name="Sauvegarder").click()
    expect(page.locator("#subject-error")).to_have_text("Indiquez le sujet de la réunion.")
    fill_plan(page, first, first + dt.timedelta(days=17), [bob.email, carol.email])
    shot(page, "03-plan-form")
    page.get_by_role("button", name="Sauvegarder").click()

    # Overlap warning in the seed's words; it does not block.
    warning = page.locator(".warnings li").first
    expect(warning).to_contain_text(f"L'utilisateur {bob.name} est déjà occupé")
    expect(warning).to_contain_text(f"Avertissement de {first.strftime('%d.%m.%Y')} 10:00 à 11:00")
    expect(page.get_by_role("link", name="Annuler les changements")).to_be_visible()
    shot(page, "04-overlap-warning")
    page.get_by_role("button", name="Ignorer et sauvegarder").click()
    expect(page.get_by_role("status")).to_contain_text("Réunion enregistrée")
    href = href_of(page)

    cal = stored_cal(stack, alice, href)
    master = master_of(cal)
    rule = master["RRULE"]
    assert rule["FREQ"] == ["WEEKLY"] and sorted(rule["BYDAY"]) == ["MO", "TH"] and "UNTIL" in rule
    assert master["DTSTART"].dt == dt.datetime.combine(first, dt.time(10), PARIS)
    assert str(master["X-VISIO-RECORD"]) == "TRUE"
    assert {str(a).lower() for a in master.get("ATTENDEE")} == {
        f"mailto:{bob.email}",
        f"mailto:{carol.email}",
    }
    assert "ORGANIZER" in master and alice.email in str(master["ORGANIZER"])
    link = str(
        master["CONFERENCE"]
        if not isinstance(master["CONFERENCE"], list)
        else master["CONFERENCE"][0]
    )
    assert "/j/" in link
    uid = str(master["UID"])
    # One invitation each; the organizer gets it without adding themselves.
    mails = sink.wait(uid, lambda ms: {m.to for m in ms} >= {bob.email, carol.email, alice.email})
    assert methods(mails, bob.email) == ["REQUEST"]
    expect(page.locator(f'[data-attendee="{bob.email}"] [data-partstat]')).to_have_text(
        "en attente"
    )
    expect(page.get_by_label("Lien de la réunion")).to_have_value(re.compile("/j/"))
    shot(page, "05-meeting")

    # The series is in the week view at once.
    page.get_by_role("link", name="Calendrier").first.click()
    page.get_by_role("link", name="Semaine").click()
    page.goto(f"{stack.web_url}calendar?view=week&date={first.isoformat()}")
    events = page.locator('[data-view="week"] a.event', has_text="Conseil municipal")
    expect(events).to_have_count(2)  # Monday and Thursday
    shot(page, "06-week")
    page.get_by_role("link", name="Mois").click()
    expect(page.locator('[data-view="month"]')).to_be_visible()
    shot(page, "07-month")
    page.get_by_role("link", name="Jour", exact=True).click()
    page.get_by_role("link", name="Aujourd'hui").click()

    # Edit one occurrence (Thursday): an override with RECURRENCE-ID.
    page.goto(f"{stack.web_url}calendar?view=week&date={first.isoformat()}")
    page.locator('[data-view="week"] a.event', has_text="Conseil municipal").nth(1).click()
    page.get_by_label("Sujet").fill("Conseil municipal (salle B)")
    page.get_by_label("Heure de début").fill("14:00")
    page.get_by_role("button", name="Sauvegarder", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Cette séance a été modifiée.")
    cal = stored_cal(stack, alice, href)
    overrides = [e for e in cal.walk("VEVENT") if "RECURRENCE-ID" in e]
    thursday = dt.datetime.combine(first + dt.timedelta(days=3), dt.time(10), PARIS)
    assert [o["RECURRENCE-ID"].dt for o in overrides] == [thursday]
    assert overrides[0]["DTSTART"].dt == thursday.replace(hour=14)
    assert str(overrides[0]["SUMMARY"]) == "Conseil municipal (salle B)"
    sink.wait(uid, lambda ms: any(m.to == bob.email and m.recurrence_ids for m in ms))

    # Then the series: the master moves, the occurrence is named afresh.
    page.get_by_label("Sujet").fill("Conseil municipal hebdomadaire")
    page.get_by_label("Heure de début").fill("09:00")
    page.get_by_role("button", name="Sauvegarder Séries").click()
    expect(page.get_by_role("status")).to_have_text("La série a été modifiée.")
    master = master_of(stored_cal(stack, alice, href))
    assert str(master["SUMMARY"]) == "Conseil municipal hebdomadaire"
    assert master["DTSTART"].dt.astimezone(PARIS).time() == dt.time(9)
    n = len(sink.about(uid))
    sink.wait(uid, lambda ms: len(ms) > n and any(m.to == bob.email for m in ms[n:]))
    shot(page, "08-edited")

    # Delete one occurrence (the second Monday): an EXDATE and a CANCEL for that day.
    second = first + dt.timedelta(days=7)
    page.goto(f"{stack.web_url}calendar?view=day&date={second.isoformat()}")
    page.locator("a.event", has_text="Conseil municipal").click()
    page.get_by_role("button", name="Supprimer", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Cette séance a été supprimée.")
    master = master_of(stored_cal(stack, alice, href))
    exdates = [
        d.dt
        for ex in (
            [master["EXDATE"]] if not isinstance(master["EXDATE"], list) else master["EXDATE"]
        )
        for d in ex.dts
    ]
    assert dt.datetime.combine(second, dt.time(9), PARIS) in exdates
    mails = sink.wait(uid, lambda ms: "CANCEL" in methods(ms, bob.email))
    cancel = next(m for m in mails if m.to == bob.email and m.method == "CANCEL")
    assert cancel.recurrence_ids  # only that day
    page.goto(f"{stack.web_url}calendar?view=day&date={second.isoformat()}")
    expect(page.locator('[data-view="day"] a.event')).to_have_count(0)

    # Delete the series: the resource is gone, everyone gets a CANCEL.
    page.goto(f"{stack.web_url}calendar?view=week&date={first.isoformat()}")
    page.locator('[data-view="week"] a.event').first.click()
    page.get_by_role("button", name="Supprimer Séries").click()
    expect(page.get_by_role("status")).to_have_text("La réunion a été supprimée.")
    assert stored(stack, alice, href).status_code == 404
    sink.wait(
        uid,
        lambda ms: (
            len(
                [
                    m
                    for m in ms
                    if m.to == carol.email and m.method == "CANCEL" and not m.recurrence_ids
                ]
            )
            == 1
        ),
    )

    # On a phone screen the week is one column and the menu wraps; keyboard: the skip
    # link comes first and leads to the content.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{stack.web_url}calendar?view=week")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Aller au contenu")).to_be_focused()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways on a phone ({width}px)"
    shot(page, "11-phone-week")
    page.goto(stack.web_url)
    shot(page, "12-phone-home")
    page.set_viewport_size({"width": 1280, "height": 720})

    # Réunion instantanée: one click puts the organizer in the room as themselves, with
    # the link to copy for others right there.
    page.goto(stack.web_url)
    page.get_by_role("button", name="Réunion instantanée").click()
    wait_state(page, "joined")
    expect(page.get_by_label("Lien à partager avec les autres participants")).to_have_value(
        re.compile("/j/")
    )
    expect(page.get_by_role("button", name="Copier le lien")).to_be_visible()
    shot(page, "10-instant-room")
    shared = page.get_by_label("Lien à partager avec les autres participants").input_value()
    assert urlsplit(shared).path == urlsplit(page.url).path  # the room the organizer is in


def test_english_wrong_password_and_reset_by_mail(
    stack: Stack, sink: Sink, context: BrowserContext
) -> None:
    dora = person(stack, "Dora Le Bihan")
    page = context.new_page()
    page.goto(stack.web_url + "login?lang=en")
    page.get_by_label("Login").fill(dora.login)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong login or password.")
    page.get_by_role("link", name="Reset your password").click()
    page.get_by_label("Login").fill(dora.login)
    page.get_by_role("button", name="Reset your password").click()
    expect(page.get_by_role("status")).to_contain_text("a reset link was just sent")

    def reset_mail() -> Mail | None:
        return next((m for m in sink.all() if m.to == dora.email and m.cal is None), None)

    mail = wait_for(reset_mail, what="the reset mail")
    link = re.search(r"http://\S+/reset/\S+", mail.text)
    assert link is not None, mail.text
    page.goto(link.group(0))
    page.get_by_label("New password").fill("a brand new secret")
    page.get_by_label("Confirm the password").fill("a brand new secret")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Your password was changed. You can sign in.")
    # The link works once only.
    page.goto(link.group(0))
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    page.goto(stack.web_url + "login?lang=fr")
    sign_in(page, stack, dora, password="a brand new secret")


def test_forms_need_the_csrf_token_and_pages_need_a_session(stack: Stack) -> None:
    r = requests.get(stack.web_url + "calendar", allow_redirects=False, timeout=10)
    assert r.status_code == 303 and r.headers["Location"] == "/login"
    r = requests.post(stack.web_url + "login", data={"login": "x", "password": "y"}, timeout=10)
    assert r.status_code == 403
    health = requests.get(stack.web_url + "healthz", timeout=10).json()
    assert health["status"] == "ok" and health["workers"] >= 1  # served without a session
