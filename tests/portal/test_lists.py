"""Toutes vos réunions / Aujourd'hui / Période, and the subject filter, as the seed's list."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from playwright.sync_api import BrowserContext, expect

from tests.e2e.conftest import PASSWORD, DavUser
from tests.portal.conftest import ZONE, person, shot, sign_in
from tests.support import ics
from tests.support.stack import Stack

PARIS = ZoneInfo(ZONE)


def test_a_period_in_the_past_and_the_subject_filter(stack: Stack, context: BrowserContext) -> None:
    gaelle = person(stack, "Gaëlle Morvan")
    page = context.new_page()
    sign_in(page, stack, gaelle)  # the portal makes the calendar on first sign-in
    cal = DavUser(stack, gaelle.login, PASSWORD, stack.caldav_url + f"{gaelle.login}/calendar/")
    today = dt.datetime.now(PARIS).date()
    past = today - dt.timedelta(days=60)
    soon = today + dt.timedelta(days=3)
    for href, day, title in (
        ("past.ics", past, "Bilan du trimestre"),
        ("soon.ics", soon, "Comité de pilotage"),
        ("other.ics", soon, "Point budget"),
    ):
        stamp = day.strftime("%Y%m%d")
        body = ics.event(summary=title, start=f"{stamp}T100000", end=f"{stamp}T110000")
        assert cal.put(href, body).status_code in (201, 204)

    for n in range(4):  # six meetings that day in all: a month cell shows four, then "+2"
        stamp = soon.strftime("%Y%m%d")
        body = ics.event(
            summary=f"Atelier {n}", start=f"{stamp}T1{n + 4}0000", end=f"{stamp}T1{n + 4}3000"
        )
        assert cal.put(f"atelier{n}.ics", body).status_code in (201, 204)
    page.goto(f"{stack.web_url}calendar?view=month&date={soon.isoformat()}")
    cell = page.locator("table.month td", has=page.locator("a.more"))
    expect(cell).to_have_count(1)
    expect(cell.locator("a.event")).to_have_text(
        ["10:00 Comité de pilotage", "10:00 Point budget", "14:00 Atelier 0", "15:00 Atelier 1"]
    )
    expect(cell.locator("a.more")).to_have_text("+2")
    cell.locator("a.more").click()
    expect(page.locator('table.hours[data-view="day"] a.event')).to_have_count(6)

    page.get_by_role("link", name="Toutes vos réunions").first.click()
    items = page.locator("ul.items li")
    page.get_by_label("Sujet contenant").fill("o")  # Comité, Point: not the Ateliers
    page.get_by_role("button", name="Afficher").click()
    expect(items).to_have_count(2)  # from today on: the past meeting is not listed
    page.get_by_label("Sujet contenant").fill("comité")
    page.get_by_role("button", name="Afficher").click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text("Comité de pilotage")

    page.get_by_role("link", name="Période").click()
    page.get_by_label("Du").fill((past - dt.timedelta(days=1)).isoformat())
    page.get_by_label("Au").fill(today.isoformat())
    page.get_by_role("button", name="Afficher").click()
    expect(items).to_have_count(1)
    expect(items.first).to_contain_text(f"{past.strftime('%d.%m.%Y')} 10:00")
    expect(items.first).to_contain_text("Bilan du trimestre")
    shot(page, "13-period")
    # A period that ends before it starts is refused next to the field.
    page.get_by_label("Au").fill((past - dt.timedelta(days=5)).isoformat())
    page.get_by_role("button", name="Afficher").click()
    expect(page.locator("#to-error")).to_have_text(
        "Donnez une fin après le début, deux ans au plus."
    )
    expect(page.get_by_label("Au")).to_have_attribute("aria-invalid", "true")
