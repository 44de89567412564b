"""Vos enregistrements: an organizer finds, downloads and deletes their recordings.

The rows and files are put where the recorder puts them (its own store API, the
same database the running backend reads); making them through a recorded
meeting is tests/recording's job.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import BrowserContext, expect

from tests.portal.conftest import person, sign_in
from tests.support.stack import Stack
from visio_core.db import Database
from visio_core.recordings import Recordings


def recorded(stack: Stack, owner: str, title: str) -> tuple[int, Path]:
    folder = stack.data_dir / "recordings" / "portal-test"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{owner}-{len(list(folder.iterdir()))}.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 2000)
    db = Database(stack.database)
    try:
        store = Recordings(db)
        rec_id = store.open(f"room-{owner}-{title}", "20261201T090000Z", owner, title)
        store.end_segment(store.add_segment(rec_id, path), path.stat().st_size)
        store.finish(rec_id)
    finally:
        db.close()
    return rec_id, path


def test_the_organizer_downloads_and_deletes_only_their_own(
    stack: Stack, context: BrowserContext
) -> None:
    hugo, ines = person(stack, "Hugo Le Floch"), person(stack, "Inès Robin")
    _, mine = recorded(stack, hugo.login, "Conseil d'école")
    their_id, theirs = recorded(stack, ines.login, "Réunion d'Inès")
    page = context.new_page()
    sign_in(page, stack, hugo)
    page.get_by_role("link", name="Vos enregistrements").click()
    expect(page.get_by_text("gardés 30 jours")).to_be_visible()
    rows = page.locator("[data-recording]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Conseil d'école")
    with page.expect_download() as got:
        page.get_by_role("link", name="Télécharger — Conseil d'école").click()
    assert Path(got.value.path()).read_bytes() == mine.read_bytes()
    # Another person's recording: not listed, not served, not deletable by its number.
    assert page.request.get(f"{stack.web_url}recordings/{their_id}").status == 404
    csrf = page.locator('input[name="csrf"]').first.get_attribute("value") or ""
    r = page.request.post(
        f"{stack.web_url}recordings/{their_id}/delete", form={"csrf": csrf}, max_redirects=0
    )
    assert r.status == 404 and theirs.exists()
    page.on("dialog", lambda d: d.accept())
    page.get_by_role("button", name="Supprimer — Conseil d'école").click()
    expect(page.get_by_role("status")).to_have_text("L'enregistrement a été supprimé.")
    expect(rows).to_have_count(0)
    assert not mine.exists() and theirs.exists()
