"""Implicit scheduling (RFC 6638 subset) inside the storage call that writes an event.

The organizer's PUT queues the iTIP messages in the outbox, keeps personal and
RSVP links in step and delivers a copy into the calendar of every attendee who
has an account here. An attendee's PUT that changes their PARTSTAT updates the
organizer's copy (internal organizer) or queues a REPLY (external organizer).
Everything runs in the caller's registry transaction; nothing slow happens here.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass

import radicale.item as radicale_item
from icalendar import Calendar
from icalendar.prop import vCalAddress
from radicale import storage as radicale_storage

from caldav_plugin import request
from caldav_plugin.homes import CalendarHomes, href_for
from visio_core import conference, ical, imip, itip, links, outbox, tokens
from visio_core.accounts import Account, Accounts
from visio_core.conference import ConferenceSpec
from visio_core.db import Conn
from visio_core.settings import Settings

log = logging.getLogger("visio.scheduling")

# Set while the scheduler itself writes into someone's calendar, so that write
# is not taken for that person's own change.
delivering: ContextVar[bool] = ContextVar("delivering", default=False)

STATUS_SENT = "1.1"
STATUS_DELIVERED = "1.2"
STATUS_INVALID = "3.7"
STATUS_FAILED = "5.1"


@dataclass(frozen=True)
class Role:
    kind: str  # "organizer" | "attendee" | "none"
    account: Account | None
    organizer: str  # normalised address


def role_of(cal: Calendar, account: Account | None, accounts: Accounts) -> Role:
    """Whose copy this is. The owner is an attendee only when listed as one and someone
    else organises; an ORGANIZER address we do not know (a client identity that is not
    the account's address) still leaves the owner in charge of their own event."""
    org = itip.organizer_address(cal)
    events = conference.vevents(cal)
    has_people = any(itip.attendees(ev) for ev in events)
    if account is None or (not has_people and not org):
        return Role("none", account, org)

    def is_me(address: str) -> bool:
        if address == account.email.lower():
            return True
        found = accounts.by_address(address)
        return found is not None and found.login == account.login

    if not org or is_me(org):
        return Role("organizer", account, org or account.email.lower())
    listed = any(is_me(a) for ev in events for a in itip.attendees(ev))
    return Role("attendee" if listed else "organizer", account, org)


class Scheduler:
    def __init__(
        self,
        settings: Settings,
        accounts: Accounts,
        key: bytes,
        storage: radicale_storage.BaseStorage,
    ) -> None:
        self.settings = settings
        self.accounts = accounts
        self.key = key
        self.homes = CalendarHomes(storage)
        self._known: dict[str, Account | None] = {}  # address -> account, for this call

    # organizer side -------------------------------------------------------
    def prepare_organizer(
        self, old: Calendar | None, cal: Calendar, role: Role, failed: dict[str, str]
    ) -> None:
        """ORGANIZER when missing, SEQUENCE raised, SCHEDULE-STATUS on each attendee."""
        account = role.account
        assert account is not None
        self._resolve(a for ev in conference.vevents(cal) for a in itip.attendees(ev))
        for ev in conference.vevents(cal):
            people = itip.attendees(ev)
            if people and "ORGANIZER" not in ev:
                ev.add(
                    "ORGANIZER",
                    vCalAddress(f"mailto:{account.email}"),
                    parameters={"CN": account.name},
                )
            for key, att in people.items():
                if not itip.server_schedules(att):
                    att.params.pop("SCHEDULE-STATUS", None)
                elif not itip.address_of(att):
                    att.params["SCHEDULE-STATUS"] = STATUS_INVALID
                elif key == role.organizer:
                    att.params.pop("SCHEDULE-STATUS", None)
                elif key in failed:
                    att.params["SCHEDULE-STATUS"] = STATUS_FAILED
                else:
                    internal = self._internal(key)
                    att.params["SCHEDULE-STATUS"] = STATUS_DELIVERED if internal else STATUS_SENT
        itip.bump_sequences(old, cal)

    def _resolve(self, addresses: Iterable[str]) -> None:
        """Look up many attendees at once; `_internal` then answers from memory."""
        todo = [a for a in addresses if a not in self._known]
        if todo:
            found = self.accounts.by_addresses(todo)
            self._known.update({a: found.get(a) for a in todo})

    def _internal(self, address: str) -> Account | None:
        if address not in self._known:
            self._resolve([address])
        acc = self._known[address]
        return acc if acc is not None and not acc.disabled else None

    def after_organizer_write(
        self,
        conn: Conn,
        owner: str,
        old: Calendar | None,
        cal: Calendar,
        text: str,
        role: Role,
        spec: ConferenceSpec | None,
    ) -> None:
        uid = ical.uid_of(cal)
        messages = itip.plan(old, cal, role.organizer)
        main = conference.master(cal)
        people = {
            k: str(a.params.get("CN", ""))
            for k, a in (itip.attendees(main).items() if main is not None else [])
            if itip.address_of(a)
        }
        if spec is not None:
            links.sync_attendee_links(conn, self.key, spec.room_id, people)
        if self.settings.invite_organizer and main is not None and role.account is not None:
            messages = self._with_organizer_copy(old, cal, messages, role)
        account = role.account
        outbox.add_change(
            conn,
            owner=owner,
            uid=uid,
            organizer=role.organizer,
            organizer_name=account.name if account else "",
            room_id=spec.room_id if spec else None,
            calendar=imip.placeholder_text(text, spec.join_url if spec else None),
            messages=messages,
            is_update=old is not None,
        )
        self._deliver(messages, cal, spec, role)

    def _with_organizer_copy(
        self, old: Calendar | None, cal: Calendar, messages: list[itip.Outgoing], role: Role
    ) -> list[itip.Outgoing]:
        """The organizer gets the invitation too (the old portal made them add themselves)."""
        whole = [m for m in messages if m.recurrence_id is None and m.method == "REQUEST"]
        main = conference.master(cal)
        everyone = set(itip.recipients_of(main, [role.organizer])) if main is not None else set()
        if whole and set(whole[0].recipients) == everyone:
            return [*messages, itip.Outgoing("REQUEST", None, whole[0].sequence, (role.organizer,))]
        return messages

    def on_organizer_delete(self, conn: Conn, owner: str, old: Calendar, role: Role) -> None:
        uid = ical.uid_of(old)
        messages = itip.plan(old, None, role.organizer)
        if self.settings.invite_organizer and messages:
            m = messages[0]
            messages.append(itip.Outgoing("CANCEL", None, m.sequence, (role.organizer,)))
        spec_room = conference.room_identity(old)
        join_url = None
        if spec_room:
            join_url = self.settings.join_prefix + tokens.room_token(self.key, spec_room[0])
        outbox.add_change(
            conn,
            owner=owner,
            uid=uid,
            organizer=role.organizer,
            organizer_name=role.account.name if role.account else "",
            room_id=spec_room[0] if spec_room else None,
            calendar=imip.placeholder_text(ical.serialize(old), join_url),
            messages=messages,
            is_update=True,
        )
        self._deliver(messages, old, None, role, deleted=True)

    # internal delivery ----------------------------------------------------
    def _deliver(
        self,
        messages: list[itip.Outgoing],
        cal: Calendar,
        spec: ConferenceSpec | None,
        role: Role,
        deleted: bool = False,
    ) -> None:
        uid = ical.uid_of(cal)
        targets: dict[str, str] = {}
        for m in messages:
            for r in m.recipients:
                if r != role.organizer:
                    targets[r] = (
                        "CANCEL"
                        if (m.method == "CANCEL" and m.recurrence_id is None)
                        else (targets.get(r) or "UPDATE")
                    )
        for address, action in targets.items():
            account = self._internal(address)
            if account is None:
                continue
            try:
                self._deliver_one(account, address, uid, cal, spec, cancel=action == "CANCEL")
            except Exception:  # one attendee's broken calendar must not lose the organizer's save
                log.exception("could not deliver %s into %s's calendar", uid, account.login)

    def _deliver_one(
        self,
        account: Account,
        address: str,
        uid: str,
        cal: Calendar,
        spec: ConferenceSpec | None,
        cancel: bool,
    ) -> None:
        collection, href, existing = self.homes.find_copy(account.login, uid)
        copy_cal = copy.deepcopy(cal)
        for ev in conference.vevents(copy_cal):
            for name in imip.PRIVATE_PROPS:
                ev.pop(name, None)
            if cancel:
                ev.pop("STATUS", None)
                ev.add("STATUS", "CANCELLED")
            for att in itip.attendees(ev).values():
                att.params.pop("SCHEDULE-STATUS", None)  # the organizer's bookkeeping
            mine = itip.attendees(ev).get(address)
            if mine is not None:
                previous = _partstat(existing, address) if existing is not None else None
                mine.params["PARTSTAT"] = previous or mine.params.get("PARTSTAT", "NEEDS-ACTION")
                mine.params["RSVP"] = "TRUE"
        text = ical.unfold(ical.serialize(copy_cal))
        if spec is not None:
            personal = self.settings.join_prefix + tokens.attendee_token(
                self.key, spec.room_id, address
            )
            text = text.replace(spec.join_url, personal)
        if collection is None:
            collection = self.homes.default_calendar(account.login)
            href = href_for(uid)
        item = radicale_item.Item(collection_path=collection.path, text=text)
        item.prepare()
        token = delivering.set(True)
        try:
            with request.outside_put():
                collection.upload(href, item)
        finally:
            delivering.reset(token)

    # attendee side ----------------------------------------------------------
    def after_attendee_write(
        self,
        conn: Conn,
        old: Calendar | None,
        cal: Calendar | None,
        role: Role,
        deleted: bool = False,
    ) -> None:
        """The attendee answered in their own calendar app: tell the organizer."""
        if delivering.get() or role.account is None:
            return
        me = self._my_address(cal or old, role.account)
        if me is None:
            return
        before = _partstat(old, me) if old is not None else None
        after = "DECLINED" if deleted or cal is None else _partstat(cal, me)
        if not after or after == before:
            return
        source = cal if cal is not None else old
        assert source is not None
        uid = ical.uid_of(source)
        organizer = self._internal(role.organizer)
        if organizer is not None:
            self.set_partstat(organizer.login, uid, me, after)
            return
        reply = _reply_calendar(source, me, after)
        seq = itip.sequence(conference.master(source))
        conn.execute(
            "DELETE FROM outbox WHERE uid = ? AND method = 'REPLY' AND recipient = ?"
            " AND sequence = ?",
            (uid, role.organizer, seq),
        )
        outbox.add_change(
            conn,
            owner=role.account.login,
            uid=uid,
            organizer=me,
            organizer_name=role.account.name,
            room_id=None,
            calendar=ical.serialize(reply),
            messages=[itip.Outgoing("REPLY", None, seq, (role.organizer,))],
            is_update=False,
        )

    def _my_address(self, cal: Calendar | None, account: Account) -> str | None:
        if cal is None:
            return None
        main = conference.master(cal)
        for key in itip.attendees(main) if main is not None else {}:
            found = self.accounts.by_address(key)
            if found is not None and found.login == account.login:
                return key
        return None

    def set_partstat(
        self, organizer_login: str, uid: str, address: str, partstat: str | None
    ) -> bool | None:
        """Record an attendee's answer on the organizer's copy (no message goes out for it).

        With `partstat` None the copy is saved again as it is, which refreshes the
        SCHEDULE-STATUS of every attendee from the outbox (a message failed for good).
        Returns None when the organizer has no such event any more.
        """
        collection, href, existing = self.homes.find_copy(organizer_login, uid)
        if collection is None or existing is None:
            return None
        changed = partstat is None
        for ev in conference.vevents(existing):
            att = itip.attendees(ev).get(address)
            if partstat and att is not None and att.params.get("PARTSTAT") != partstat:
                att.params["PARTSTAT"] = partstat
                changed = True
        if changed:
            item = radicale_item.Item(
                collection_path=collection.path, text=ical.serialize(existing)
            )
            item.prepare()
            with request.outside_put():
                collection.upload(href, item)
        return changed


def _partstat(cal: Calendar | None, address: str) -> str | None:
    main = conference.master(cal) if cal is not None else None
    att = itip.attendees(main).get(address) if main is not None else None
    return str(att.params.get("PARTSTAT", "NEEDS-ACTION")).upper() if att is not None else None


def _reply_calendar(cal: Calendar, me: str, partstat: str) -> Calendar:
    out = copy.deepcopy(cal)
    for ev in conference.vevents(out):
        mine = itip.attendees(ev).get(me)
        ev.pop("ATTENDEE", None)
        if mine is not None:
            mine.params["PARTSTAT"] = partstat
            mine.params.pop("RSVP", None)
            ev.add("ATTENDEE", mine)
    return out
