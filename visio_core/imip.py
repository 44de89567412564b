"""iMIP (RFC 6047): the iTIP calendar of one message and the e-mail that carries it.

Pure: stored calendar text and message facts in, an `EmailMessage` out. The
structure is the one Outlook, Thunderbird, Gmail and Apple Mail all understand:
multipart/mixed → (multipart/alternative → text/plain, text/html,
text/calendar; method=…) + the same calendar as invite.ics.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import html
from dataclasses import dataclass, field
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from icalendar import Calendar, Event
from icalendar.prop import vCalAddress

from visio_core import conference, when
from visio_core.categories import DEFAULT_RECORD_WORDS, normalize
from visio_core.ical import unfold
from visio_core.itip import address_of, attendees, components, exdates

JOIN_PLACEHOLDER = "https://visio.invalid/join-url-placeholder"
# Never leave the organizer's copy: the stream key, and what makes a copy the room's own.
PRIVATE_PROPS = ("X-VISIO-STREAM-URL", *conference.OWNER_PROPS)
# What attendees' copies say instead of the stream URL: that there is a stream, not where.
STREAMED_PROP = "X-VISIO-STREAMED"
# How much of the organizer's description the mail shows (the .ics carries all of it).
DESCRIPTION_LIMIT = 3000

_TEXT = {
    "fr": {
        "REQUEST": "Invitation",
        "UPDATE": "Mise à jour",
        "CANCEL": "Annulé",
        "REPLY": "Réponse",
        "join": "Rejoindre la réunion",
        "when": "Quand",
        "organizer": "Organisateur",
        "attendees": "Participants",
        "description": "Ordre du jour / Description",
        "phone": "Par téléphone : appelez le {number}, puis tapez le numéro de salle {room} "
        "suivi de #",
        "cancelled": "Cette réunion a été annulée.",
        "cancelled_one": "Cette séance a été annulée.",
        "answer": "Votre réponse",
        "ACCEPTED": "Accepter",
        "TENTATIVE": "Peut-être",
        "DECLINED": "Refuser",
        "recorded": "Cette réunion sera enregistrée. En y participant, vous acceptez que votre "
        "image, votre voix et votre nom figurent dans l'enregistrement.",
        "streamed": "Cette réunion sera diffusée en direct sur Internet. En y participant, vous "
        "acceptez que votre image, votre voix et votre nom soient vus du public.",
        "both": "Cette réunion sera enregistrée et diffusée en direct sur Internet. En y "
        "participant, vous acceptez que votre image, votre voix et votre nom y figurent.",
        "footer": "Message envoyé par le service de visioconférence pour {organizer}.",
        "replied": "{name} a répondu : {answer}",
    },
    "en": {
        "REQUEST": "Invitation",
        "UPDATE": "Updated invitation",
        "CANCEL": "Cancelled",
        "REPLY": "Reply",
        "join": "Join the meeting",
        "when": "When",
        "organizer": "Organizer",
        "attendees": "Attendees",
        "description": "Agenda / Description",
        "phone": "By phone: call {number}, then key in the room number {room} followed by #",
        "cancelled": "This meeting has been cancelled.",
        "cancelled_one": "This occurrence has been cancelled.",
        "answer": "Your answer",
        "ACCEPTED": "Accept",
        "TENTATIVE": "Tentative",
        "DECLINED": "Decline",
        "recorded": "This meeting will be recorded. By taking part, you agree that your "
        "picture, your voice and your name will be in the recording.",
        "streamed": "This meeting will be streamed live on the Internet. By taking part, you "
        "agree that your picture, your voice and your name will be seen by the public.",
        "both": "This meeting will be recorded and streamed live on the Internet. By taking "
        "part, you agree that your picture, your voice and your name will be in it.",
        "footer": "Sent by the video meeting service on behalf of {organizer}.",
        "replied": "{name} replied: {answer}",
    },
}


def clean_header(value: str, limit: int = 200) -> str:
    """A header value from event data: no CR, LF, NUL or other controls, bounded length."""
    text = "".join(" " if (ord(c) < 32 or ord(c) == 127) else c for c in value)
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class MessageFacts:
    method: str
    recurrence_id: str | None
    sequence: int
    recipient: str
    organizer: str
    organizer_name: str
    mail_from: str
    language: str
    join_url: str | None = None  # this recipient's link (personal, or the room's)
    dialin_number: str | None = None
    room_number: str | None = None
    rsvp_urls: dict[str, str] = field(default_factory=dict)  # PARTSTAT -> URL
    is_update: bool = False
    now: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))


def _strip_private(ev: Event, facts: MessageFacts) -> None:
    if str(ev.get("X-VISIO-STREAM-URL", "")).strip():
        ev.pop(STREAMED_PROP, None)
        ev.add(STREAMED_PROP, "TRUE")
    for name in PRIVATE_PROPS:
        ev.pop(name, None)
    # Any property may carry the link (Outlook copies DESCRIPTION into X-ALT-DESC).
    for name in [n for n in ev if JOIN_PLACEHOLDER in str(ev[n])]:
        values = ev[name]
        items = values if isinstance(values, list) else [values]
        ev.pop(name)
        for v in items:
            if JOIN_PLACEHOLDER in str(v):
                if not facts.join_url:
                    continue
                kind: Any = type(v)  # a text-like value (vText, vUri): it held a URL
                new = kind(str(v).replace(JOIN_PLACEHOLDER, facts.join_url))
                new.params = copy.deepcopy(getattr(v, "params", {}))
                v = new
            ev.add(name, v)


def _prepare(ev: Event, facts: MessageFacts) -> Event:
    ev = copy.deepcopy(ev)
    _strip_private(ev, facts)
    ev.pop("DTSTAMP", None)
    ev.add("DTSTAMP", facts.now)
    ev.pop("SEQUENCE", None)
    ev.add("SEQUENCE", facts.sequence)
    if "ORGANIZER" in ev:
        ev["ORGANIZER"].params["SENT-BY"] = f"mailto:{facts.mail_from}"
    for a in attendees(ev).values():
        a.params.pop("SCHEDULE-STATUS", None)
        if facts.method == "REQUEST":
            a.params["RSVP"] = "TRUE"  # some clients omit it; without it no Accept/Decline
    return ev


def _only_recipient(ev: Event, recipient: str) -> None:
    """A CANCEL to a removed attendee names that attendee (they are no longer listed)."""
    if recipient not in attendees(ev):
        ev.add("ATTENDEE", vCalAddress(f"mailto:{recipient}"))


def itip_calendar(stored: Calendar, facts: MessageFacts) -> Calendar:
    """The METHOD calendar for one message, from the organizer's stored calendar."""
    out = Calendar()
    out.add("PRODID", "-//Visio//Calendar videoconferencing//FR")
    out.add("VERSION", "2.0")
    out.add("METHOD", facts.method)
    comps = components(stored)
    master = comps.get(None) or next(iter(comps.values()))
    if facts.recurrence_id is None:
        chosen = [master] if facts.method == "CANCEL" else list(comps.values())
        events = [_prepare(ev, facts) for ev in chosen]
    elif facts.recurrence_id in comps:
        events = [_prepare(comps[facts.recurrence_id], facts)]
    else:  # an EXDATE: the cancelled occurrence, made from the master
        events = [_occurrence_of(master, facts)]
    for ev in events:
        if facts.method == "CANCEL":
            ev.pop("STATUS", None)
            ev.add("STATUS", "CANCELLED")
            _only_recipient(ev, facts.recipient)
        out.add_component(ev)
    for tz in stored.walk("VTIMEZONE"):
        out.add_component(tz)
    out.add_missing_timezones()
    return out


def _occurrence_of(master: Event, facts: MessageFacts) -> Event:
    ev = _prepare(master, facts)
    value = None
    for key, d in exdates(master).items():
        if key == facts.recurrence_id:
            value = d
    for name in ("RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND", "DURATION"):
        ev.pop(name, None)
    if value is not None:
        start = value.dt  # type: ignore[attr-defined]
        ev.add("RECURRENCE-ID", start)
        ev.add("DTSTART", start)
        length = _duration(master)
        if length is not None:
            ev.add("DTEND", start + length)
    return ev


def _duration(ev: Event) -> dt.timedelta | None:
    length: Any = getattr(ev.get("DURATION"), "dt", None)
    end: Any = getattr(ev.get("DTEND"), "dt", None)
    start: Any = getattr(ev.get("DTSTART"), "dt", None)
    if length is None and end is not None and start is not None:
        length = end - start
    return length if isinstance(length, dt.timedelta) else None


def message_id(uid: str, facts: MessageFacts, domain: str) -> str:
    """Deterministic, so a message retried after a crash is recognisably the same one."""
    key = "\x1f".join(
        (uid, facts.recurrence_id or "", str(facts.sequence), facts.method, facts.recipient)
    )
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def _shown_event(cal: Calendar, facts: MessageFacts) -> Event:
    """The VEVENT the mail's text describes: the occurrence's, else the master."""
    comps = components(cal)
    ev = comps.get(facts.recurrence_id) if facts.recurrence_id else None
    return ev or comps.get(None) or next(iter(comps.values()))


def shorten(text: str, limit: int = DESCRIPTION_LIMIT) -> str:
    """At most `limit` characters then "…", cut after a whole word when one ends nearby."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    end = max(cut.rfind(" "), cut.rfind("\n"))
    if end > limit - 100:
        cut = cut[:end]
    return cut.rstrip() + "…"


def description_text(ev: Event, join_url: str | None) -> str:
    """The organizer's own description, as plain text for the mail's body.

    Our block is left out (the mail shows the button and phone line instead);
    the room's link, which the stored copy holds as a placeholder, becomes this
    recipient's link; control characters other than line breaks and tabs become
    spaces.
    """
    raw = conference.without_block(str(ev.get("DESCRIPTION", "")))
    raw = raw.replace(JOIN_PLACEHOLDER, join_url or "").replace("\r", "\n")
    clean = "".join(c if c in "\n\t" or not (ord(c) < 32 or ord(c) == 127) else " " for c in raw)
    lines = [line.rstrip() for line in clean.split("\n")]
    return shorten("\n".join(lines).strip("\n"))


def _summary_when(cal: Calendar, facts: MessageFacts) -> tuple[str, str]:
    ev = _shown_event(cal, facts)
    summary = str(ev.get("SUMMARY", "")) or (
        "(untitled)" if facts.language == "en" else "(sans titre)"
    )
    start = ev.get("DTSTART")
    if start is None:
        return summary, ""
    begin = start.dt
    length = _duration(ev) or dt.timedelta(0)
    if not isinstance(begin, dt.datetime):
        begin = dt.datetime.combine(begin, dt.time(), dt.UTC)
    zone = when.zone_name(begin)
    occ = when.Occurrence(begin, begin + length, zone)
    return summary, when.format_range(occ, facts.language)


def recording_notice(itip: Calendar) -> str | None:
    """"recorded", "streamed", "both" or None: what the invitation must warn about.

    The organizer's event asks for it with X-VISIO-RECORD:TRUE or a recording
    category word (as caldav_plugin's meeting options do), and for a stream with
    a stream URL, which `itip_calendar` has already replaced by X-VISIO-STREAMED.
    """
    events = conference.vevents(itip)
    if not events:
        return None
    ev = events[0]
    words = {normalize(w) for w in DEFAULT_RECORD_WORDS}
    recorded = str(ev.get("X-VISIO-RECORD", "")).strip().upper() == "TRUE" or any(
        normalize(c) in words for c in conference.categories_of(ev)
    )
    streamed = str(ev.get(STREAMED_PROP, "")).strip().upper() == "TRUE" or bool(
        str(ev.get("X-VISIO-STREAM-URL", "")).strip()
    )
    if recorded and streamed:
        return "both"
    return "recorded" if recorded else "streamed" if streamed else None


def build_email(
    uid: str, itip: Calendar, facts: MessageFacts, ics_text: str | None = None
) -> EmailMessage:
    """The e-mail of one message; `ics_text` is the calendar already rendered for this
    recipient (a fan-out renders a template), else `itip` is serialised here."""
    t = _TEXT.get(facts.language, _TEXT["fr"])
    summary, when_text = _summary_when(itip, facts)
    kind = "UPDATE" if facts.method == "REQUEST" and facts.is_update else facts.method
    msg = EmailMessage()
    msg["Subject"] = clean_header(
        f"{t[kind]} : {summary}" if facts.language == "fr" else f"{t[kind]}: {summary}"
    )
    domain = facts.mail_from.rsplit("@", 1)[-1] or "localhost"
    msg["From"] = Address(
        clean_header(facts.organizer_name or facts.organizer, 80), addr_spec=facts.mail_from
    )
    msg["To"] = Address(addr_spec=facts.recipient)
    if facts.organizer:
        msg["Reply-To"] = Address(clean_header(facts.organizer_name, 80), addr_spec=facts.organizer)
    msg["Date"] = format_datetime(facts.now)
    msg["Message-ID"] = message_id(uid, facts, domain)
    msg["Auto-Submitted"] = "auto-generated"

    people = [
        clean_header(str(a.params.get("CN", "")) or address_of(a), 120)
        for ev in conference.vevents(itip)[:1]
        for a in attendees(ev).values()
    ]
    cancelled = facts.method == "CANCEL"
    lines = [summary, ""]
    if cancelled:
        lines.append(t["cancelled_one"] if facts.recurrence_id else t["cancelled"])
    if when_text:
        lines.append(f"{t['when']} : {when_text}")
    lines.append(f"{t['organizer']} : {facts.organizer_name} <{facts.organizer}>")
    if people:
        lines.append(f"{t['attendees']} : {', '.join(people)}")
    # An invitation and its updates show the agenda; a cancellation need not.
    description = (
        description_text(_shown_event(itip, facts), facts.join_url)
        if facts.method == "REQUEST"
        else ""
    )
    if description:
        lines += ["", f"{t['description']} :", description]
    notice = None if cancelled else recording_notice(itip)
    if notice:
        lines += ["", t[notice]]
    if facts.join_url and not cancelled:
        lines += ["", f"{t['join']} : {facts.join_url}"]
        if facts.dialin_number and facts.room_number:
            lines.append(t["phone"].format(number=facts.dialin_number, room=facts.room_number))
    if facts.rsvp_urls and not cancelled:
        lines += ["", f"{t['answer']} :"]
        lines += [f"  {t[k]} : {u}" for k, u in facts.rsvp_urls.items()]
    lines += ["", t["footer"].format(organizer=facts.organizer_name or facts.organizer)]
    text = "\n".join(lines) + "\n"

    e = html.escape
    parts = [f"<h1 style='font-size:20px'>{e(summary)}</h1>"]
    if cancelled:
        said = t["cancelled_one"] if facts.recurrence_id else t["cancelled"]
        parts.append(f"<p><strong>{e(said)}</strong></p>")
    if when_text:
        parts.append(f"<p><strong>{e(t['when'])} :</strong> {e(when_text)}</p>")
    parts.append(
        f"<p><strong>{e(t['organizer'])} :</strong> {e(facts.organizer_name)} "
        f"&lt;{e(facts.organizer)}&gt;</p>"
    )
    if people:
        parts.append(f"<p><strong>{e(t['attendees'])} :</strong> {e(', '.join(people))}</p>")
    if description:
        # Escaped text only: no markup nor link made from what the event says.
        shown = "<br>\n".join(e(line) for line in description.split("\n"))
        parts.append(
            f"<p><strong>{e(t['description'])} :</strong></p>"
            f"<p data-visio='description'>{shown}</p>"
        )
    if notice:
        parts.append(f"<p data-visio='recording'><strong>{e(t[notice])}</strong></p>")
    if facts.join_url and not cancelled:
        parts.append(
            f"<p><a href='{e(facts.join_url)}' style='display:inline-block;padding:12px 24px;"
            f"background:#000091;color:#ffffff;font-weight:bold;text-decoration:none;"
            f"border-radius:4px'>{e(t['join'])}</a></p>"
        )
        if facts.dialin_number and facts.room_number:
            parts.append(
                f"<p>{e(t['phone'].format(number=facts.dialin_number, room=facts.room_number))}</p>"
            )
    if facts.rsvp_urls and not cancelled:
        links = " · ".join(f"<a href='{e(u)}'>{e(t[k])}</a>" for k, u in facts.rsvp_urls.items())
        parts.append(f"<p>{e(t['answer'])} : {links}</p>")
    parts.append(
        f"<p style='color:#666;font-size:12px'>"
        f"{e(t['footer'].format(organizer=facts.organizer_name or facts.organizer))}</p>"
    )
    body_html = "<!doctype html><html><body>" + "\n".join(parts) + "</body></html>\n"

    ics: bytes = ics_text.encode("utf-8") if ics_text is not None else itip.to_ical()
    msg.set_content(text)
    msg.add_alternative(body_html, subtype="html")
    # As text, so it carries charset=utf-8 and quoted-printable: every client reads it inline.
    msg.add_alternative(ics.decode("utf-8"), subtype="calendar", params={"method": facts.method})
    msg.make_mixed()
    msg.add_attachment(ics, maintype="application", subtype="ics", filename="invite.ics")
    return msg


def placeholder_text(stored_text: str, join_url: str | None) -> str:
    """The stored text with the room's link replaced by a placeholder (no token at rest)."""
    text = unfold(stored_text)
    return text.replace(join_url, JOIN_PLACEHOLDER) if join_url else text
