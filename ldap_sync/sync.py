"""One sync run: the directory's accounts into the accounts store.

A full pass reads every entry the filter selects and disables the directory
accounts it did not see (people who left, or whom the filter now excludes).
An incremental pass reads only what changed since the last run's high-water
modifyTimestamp, plus the DNs of every changed entry under the base: a known
account among those that no longer matches the filter is disabled at once.
Deletions leave no trace in an incremental search; the periodic full pass (and
every manual `visio ldap-sync`) notices them.

Nothing is ever deleted: a disabled account keeps its calendars and rooms.
Only accounts the sync itself disabled are re-enabled when they come back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ldap_sync.directory import Directory, DirectoryError, Session
from ldap_sync.entries import (
    ChangeMark,
    DirectoryUser,
    UnusableEntry,
    choose_mark,
    normalise_dn,
)
from ldap_sync.provision import Provisioner
from ldap_sync.store import Known, SyncStore
from visio_core.accounts import Accounts, DirectoryRecord

log = logging.getLogger("visio.ldap.sync")
BATCH = 500  # accounts written per transaction


class SyncCancelled(Exception):
    """The run was asked to stop (shutdown); what was written so far stays."""


@dataclass
class SyncReport:
    full: bool
    added: int = 0
    changed: int = 0
    disabled: int = 0
    unchanged: int = 0
    skipped: int = 0
    provisioned: int = 0
    read: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        kind = "full" if self.full else "incremental"
        text = (
            f"{kind} sync: {self.added} added, {self.changed} changed, "
            f"{self.disabled} disabled, {self.unchanged} unchanged"
        )
        if self.skipped:
            text += f", {self.skipped} skipped"
        if self.provisioned:
            text += f"; {self.provisioned} calendars created"
        return text + f" ({self.read} entries read in {self.seconds:.1f} s)"


@dataclass
class Syncer:
    directory: Directory
    accounts: Accounts
    store: SyncStore
    provisioner: Provisioner | None = None
    progress: Callable[[int], None] | None = None  # entries read so far, once per page
    stop: threading.Event = field(default_factory=threading.Event)
    _fresh: list[str] = field(default_factory=list, init=False, repr=False)  # added or back

    def run(self, full: bool = True) -> SyncReport:
        since = None if full else self._mark()
        report = SyncReport(full=since is None)
        self._fresh = []
        started = time.monotonic()
        known = self.store.known()
        disabled = {a.login for a in self.accounts.list(disabled=True)}
        group = self.directory.config.booking_group
        changed: list[tuple[str, str]] = []
        with self.directory.session() as session:
            if since is not None:
                # The changed DNs first: an entry changed after this search shows up
                # in the account search below, so it can never look as if it had left.
                # The new mark comes from this search too: anything changed after it
                # is read again next time, never skipped.
                changed = list(session.changed_entries(since))
                latest = since
                for _, value in changed:
                    latest = latest.later(value)
                mark: ChangeMark | None = latest
            seen = self._read_accounts(session, since, known, disabled, report)
            if since is not None:
                seen_dns = {u.dn for u in seen.values()}
                by_dn = {k.dn: k for k in known.values()}
                left = [
                    by_dn[dn].login
                    for dn, _ in changed
                    if dn in by_dn and dn not in seen_dns and by_dn[dn].login not in seen
                ]
            else:
                # Entries changed during this pass may carry a later stamp than the
                # mark; the next full pass catches anything this could miss.
                mark = choose_mark(seen.values())
                left = [login for login in known if login not in seen]
                if left and not seen:
                    raise DirectoryError(
                        "the directory returned no account at all; nobody was disabled "
                        "(check VISIO_LDAP_BASE and VISIO_LDAP_FILTER)"
                    )
            members: set[str] | None = None
            group_changed = any(dn == normalise_dn(group) for dn, _ in changed)
            if group and (
                since is None
                or group_changed
                or report.added
                or self.store.get("booking_group") != group
            ):
                members = session.group_members()
        self._disable(left, disabled, report)
        if self.provisioner is not None:
            # After the LDAP session: creating thousands of calendars takes a while.
            # New and returning accounts get a calendar if they have none; a full
            # pass also heals anyone enabled who has no principal at all.
            wanted = [login for login in self._fresh if login not in disabled]
            if since is None:
                enabled = [login for login in seen if login not in disabled]
                wanted += self.provisioner.missing(enabled)
            report.provisioned += self.provisioner.provision(list(dict.fromkeys(wanted)))
        self._update_booking(group, members)
        state = {
            "mark_attribute": mark.attribute if mark else "",
            "mark": mark.value if mark else "",
            "booking_group": group,
        }
        if since is None:
            state["last_full_at"] = repr(time.time())
        self.store.put(**state)
        report.seconds = time.monotonic() - started
        return report

    def _mark(self) -> ChangeMark | None:
        attribute, value = self.store.get("mark_attribute"), self.store.get("mark")
        return ChangeMark(attribute, value) if attribute and value else None

    def _on_page(self, report: SyncReport) -> Callable[[int], None]:
        def on_page(count: int) -> None:
            report.read += count
            if self.progress is not None:
                self.progress(report.read)
            if self.stop.is_set():
                raise SyncCancelled()

        return on_page

    def _read_accounts(
        self,
        session: Session,
        since: ChangeMark | None,
        known: dict[str, Known],
        disabled: set[str],
        report: SyncReport,
    ) -> dict[str, DirectoryUser]:
        seen: dict[str, DirectoryUser] = {}
        batch: list[DirectoryUser] = []
        for item in session.users(since, on_page=self._on_page(report)):
            if isinstance(item, UnusableEntry):
                report.skipped += 1
                log.warning("skipped: %s", item)
                continue
            if item.login in seen:
                report.skipped += 1
                log.warning(
                    "skipped %s: login %s is already %s", item.dn, item.login, seen[item.login].dn
                )
                continue
            seen[item.login] = item
            batch.append(item)
            if len(batch) >= BATCH:
                self._apply(batch, known, disabled, report)
                batch = []
        if batch:
            self._apply(batch, known, disabled, report)
        return seen

    def _apply(
        self,
        batch: list[DirectoryUser],
        known: dict[str, Known],
        disabled: set[str],
        report: SyncReport,
    ) -> None:
        outcome = self.accounts.upsert_from_directory(
            DirectoryRecord(u.login, u.email, u.name, u.entity, u.addresses) for u in batch
        )
        self.store.record((u.login, u.dn) for u in batch)
        # Back in the directory: re-enable only those the sync itself disabled.
        returning = [u.login for u in batch if u.login in known and known[u.login].left_directory]
        if returning:
            self.accounts.set_disabled_many(returning, disabled=False)
            disabled.difference_update(returning)
            for login in returning:
                log.info("%s is back in the directory: enabled", login)
                if outcome[login] == "unchanged":
                    outcome[login] = "changed"
        for u in batch:
            result = outcome[u.login]
            if result == "added":
                report.added += 1
            elif result == "changed" or (u.login in known and known[u.login].dn != u.dn):
                report.changed += 1
            else:
                report.unchanged += 1
        self._fresh += [
            u.login for u in batch if outcome[u.login] == "added" or u.login in returning
        ]

    def _disable(self, left: Iterable[str], disabled: set[str], report: SyncReport) -> None:
        # Accounts an administrator already disabled stay as they are, and are not
        # flagged: coming back to the directory does not undo a manual disable.
        newly = [login for login in left if login not in disabled]
        if not newly:
            return
        report.disabled += self.accounts.set_disabled_many(newly, disabled=True)
        self.store.mark_left(newly)
        for login in newly:
            log.info("%s left the directory (or its filter): disabled, data kept", login)

    def _update_booking(self, group: str, members: set[str] | None) -> None:
        known = self.store.known()
        if not group:
            changes = [(k.login, True) for k in known.values() if not k.may_book]
        elif members is None:
            return
        else:
            changes = [
                (k.login, allowed)
                for k in known.values()
                if (allowed := k.dn in members or k.login in members) != k.may_book
            ]
        if changes:
            self.store.set_may_book(changes)
