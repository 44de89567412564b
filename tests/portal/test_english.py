"""The portal in English, for someone in another time zone: plan, see it in the grid.

Driven through the English labels in real Chromium; the stored event is read
back through CalDAV and the invitation from the real SMTP server.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.e2e.conftest import DavUser
from tests.invitations.mail import Sink
from tests.portal.conftest import person, shot
from tests.portal.test_journey import href_of, master_of, stored_cal
from tests.support import ics
from tests.support.stack import Stack

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def london(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="en-GB", timezone_id="Europe/London")
    ctx.set_default_timeout(20_000)
    try:
        yield ctx
    finally:
        ctx.close()


def test_plan_in_english_in_london_and_find_it_in_the_week_grid(
    stack: Stack, sink: Sink, london: BrowserContext
) -> None:
    erin, finn = person(stack, "Erin Walsh"), person(stack, "Finn Byrne")
    day = dt.datetime.now(LONDON).date() + dt.timedelta(days=9)
    page = london.new_page()
    page.goto(stack.web_url + "login?lang=en")
    page.get_by_label("Login").fill(erin.login)
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Welcome to your meeting portal").wait_for()

    page.get_by_role("link", name="Plan a meeting").first.click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#subject-error")).to_have_text("Give the meeting's subject.")
    page.get_by_label("Subject").fill("Budget review")
    page.get_by_label("Date", exact=True).fill(day.isoformat())
    page.get_by_label("Start time").fill("15:30")
    page.get_by_label("Duration").fill("45")
    expect(page.get_by_label("End time")).to_have_value("16:15")
    page.get_by_label("End time").fill("17:00")
    expect(page.get_by_label("Duration")).to_have_value("90")
    page.get_by_label("Invitees", exact=True).fill(f"{finn.email}\nnot-an-address@")
    page.get_by_label("Audio conference").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#invitees-error")).to_contain_text("Invalid e-mail address")
    page.get_by_label("Invitees", exact=True).fill(finn.email)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Meeting saved")
    shot(page, "20-english-meeting")

    master = master_of(stored_cal(stack, erin, href_of(page)))
    assert master["DTSTART"].dt == dt.datetime.combine(day, dt.time(15, 30), LONDON)
    assert master["DTEND"].dt - master["DTSTART"].dt == dt.timedelta(minutes=90)
    assert [str(c) for c in master.categories] == ["Audio"]
    attendees = master.get("ATTENDEE")
    attendees = attendees if isinstance(attendees, list) else [attendees]
    assert {str(a).lower() for a in attendees} == {f"mailto:{finn.email}"}
    uid = str(master["UID"])
    mails = sink.wait(uid, lambda ms: {m.to for m in ms} >= {finn.email, erin.email})
    assert {m.method for m in mails if m.to == finn.email} == {"REQUEST"}

    # Someone's own calendar app adds a meeting: the grid shows it at once, with the portal's.
    app = DavUser(stack, erin.login, "correct horse battery", "")
    app.calendar = stack.caldav_url + f"{erin.login}/calendar/"
    stamp = day.strftime("%Y%m%d")
    body = ics.event(
        summary="From Thunderbird",
        start=f"{stamp}T090000",
        end=f"{stamp}T093000",
        tz="Europe/London",
        categories=None,
    )
    assert app.put("thunderbird.ics", body).status_code == 201

    page.get_by_role("link", name="Calendar").first.click()
    page.goto(f"{stack.web_url}calendar?view=week&date={day.isoformat()}")
    grid = page.locator('table.hours[data-view="week"]')
    expect(grid.get_by_role("columnheader", name="Time")).to_be_visible()
    row = grid.locator("tbody tr", has=page.get_by_role("rowheader", name="15:00"))
    expect(row.locator("a.event")).to_have_text(f"{day.strftime('%d.%m.%Y')} - 15:30 Budget review")
    nine = grid.locator("tbody tr", has=page.get_by_role("rowheader", name="09:00"))
    expect(nine.locator("a.event")).to_contain_text("From Thunderbird")
    shot(page, "21-english-week")
    page.get_by_role("link", name="Day", exact=True).click()
    expect(page.locator('table.hours[data-view="day"] a.event')).to_have_count(2)
    page.locator("a.event", has_text="Budget review").click()
    expect(page.get_by_label("Meeting link")).to_have_value(re.compile("/j/"))
    expect(page.locator(f'[data-attendee="{finn.email}"] [data-partstat]')).to_have_text(
        "no answer yet"
    )
