"""axe-core in real Chromium on each screen of the room page: WCAG 2.0/2.1 A and AA rules.

The page's CSP (script-src 'self') forbids an injected <script>; axe-playwright-python hands
axe's source to page.evaluate, which the CSP does not govern, so the page is scanned as served.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

from tests.browser.conftest import Browsers, book
from tests.browser.pages import (
    join_as_guest,
    open_panel,
    open_room,
    participant_video,
    wait_playing,
    wait_state,
)
from tests.e2e.conftest import DavUser

TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
OPTIONS = {"runOnly": {"type": "tag", "values": TAGS}, "resultTypes": ["violations"]}
VIEWPORTS = [(1280, 800), (390, 844)]
AXE = Axe()

# Settled: no finite animation still running (a panel sliding in would be measured half-way),
# and two frames painted since the last change (a resize relays the stage out).
SETTLED = """() => new Promise(done => {
  const busy = document.getAnimations().some(
    a => a.playState === 'running' && a.effect.getComputedTiming().iterations !== Infinity);
  if (busy) { done(false); return; }
  requestAnimationFrame(() => requestAnimationFrame(() => done(true)));
})"""


@dataclass
class Finding:
    """One rule failing on one element, and every screen where it does."""

    rule: str
    impact: str
    help: str
    url: str
    target: str
    html: str
    summaries: list[str] = field(default_factory=list)
    screens: list[str] = field(default_factory=list)


@dataclass
class Report:
    lang: str
    version: str = "?"
    findings: dict[tuple[str, str], Finding] = field(default_factory=dict)
    scans: list[str] = field(default_factory=list)

    def add(self, screen: str, results: dict[str, Any]) -> None:
        self.version = results.get("testEngine", {}).get("version", self.version)
        self.scans.append(screen)
        for v in results["violations"]:
            for node in v["nodes"]:
                target = " >> ".join(str(t) for t in node["target"])
                f = self.findings.setdefault(
                    (v["id"], target),
                    Finding(
                        v["id"], str(v["impact"]), v["help"], v["helpUrl"], target, node["html"]
                    ),
                )
                f.screens.append(screen)
                summary = str(node.get("failureSummary", "")).strip()
                if summary and summary not in f.summaries:
                    f.summaries.append(summary)

    def text(self) -> str:
        rules = sorted({k[0] for k in self.findings})
        out = [
            f"axe-core {self.version}: {len(rules)} WCAG 2.0/2.1 A/AA rule(s) fail on the room "
            f"page (lang={self.lang}), {len(self.findings)} element(s); screens scanned: "
            + ", ".join(self.scans)
        ]
        for rule in rules:
            found = [f for k, f in self.findings.items() if k[0] == rule]
            out.append(f"\n{rule} [{found[0].impact}] {found[0].help}\n  {found[0].url}")
            for f in found:
                out.append(f"  - {f.target}\n      on: {', '.join(f.screens)}")
                out.append(f"      html: {' '.join(f.html.split())[:300]}")
                for s in f.summaries:
                    out.append("      " + "\n      ".join(s.splitlines()))
        return "\n".join(out)


def scan(page: Page, report: Report, screen: str) -> None:
    """Scan the screen at each viewport size; the page is left at the first size."""
    for width, height in [*VIEWPORTS[1:], VIEWPORTS[0]]:
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_function(SETTLED, timeout=10000, polling=100)
        results = AXE.run(page, options=OPTIONS).response
        report.add(f"{screen} {width}x{height}", results)


@pytest.mark.parametrize("lang", ["fr", "en"])
def test_room_screens_have_no_wcag_aa_violations(
    user: DavUser, browsers: Browsers, lang: str
) -> None:
    link = book(user, f"a11y-{lang}.ics")
    report = Report(lang)
    alice = open_room(browsers.launch("speech"), link)
    bob = open_room(browsers.launch(lang=lang), link, lang=lang)
    # No slide-in animation, so that a panel is measured where it stays.
    bob.emulate_media(reduced_motion="reduce")

    wait_state(bob, "prejoin")
    bob.wait_for_selector('[data-role="mic-select"] option', state="attached", timeout=20000)
    scan(bob, report, "pre-join")

    join_as_guest(alice, "Alice")
    wait_state(alice, "joined")
    join_as_guest(bob, "Bob")
    wait_state(bob, "joined")
    wait_playing(bob, participant_video("Alice"), timeout=30)
    wait_playing(bob, 'video[data-role="main"]', timeout=30)
    scan(bob, report, "speaker view")

    alice.keyboard.press("c")
    alice.fill("#chat-text", "Le budget est en pièce jointe")
    alice.click('[data-action="send"]')
    bob.wait_for_selector('[data-role="unread"]:not([hidden])', timeout=10000)
    scan(bob, report, "speaker view, 1 unread")
    open_panel(bob, "chat")
    bob.locator('[data-role="chat"] li', has_text="Le budget").wait_for(timeout=10000)
    scan(bob, report, "Discussion (chat) panel")

    open_panel(bob, "people")
    bob.wait_for_selector('[data-role="people"] [data-person="Alice"]', timeout=10000)
    scan(bob, report, "Participants panel")

    open_panel(bob, "settings")
    bob.wait_for_selector('[data-role="settings-devices"] [data-role="devices"]', timeout=10000)
    scan(bob, report, "Paramètres (settings) panel")

    bob.keyboard.press("Escape")
    bob.wait_for_selector('[data-role="settings-panel"]', state="hidden")
    bob.keyboard.press("t")
    bob.wait_for_selector('body[data-view="tiles"]', state="attached", timeout=10000)
    scan(bob, report, "tile view")

    if report.findings:
        pytest.fail(report.text(), pytrace=False)
