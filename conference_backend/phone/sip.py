"""SIP messages (RFC 3261), pure: parse bytes into a message, build responses and requests.

Why our own code: the Python SIP libraries found are either unmaintained
(aiosip/asyncsip, last release 2017) or very young single-maintainer 0.x
releases (aiosipua); a UAS that only answers INVITE/ACK/BYE/CANCEL/INFO/OPTIONS
is small, and keeping it here lets us bound every input (message size, header
count, digits) ourselves.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

MAX_MESSAGE = 16384
MAX_HEADERS = 80

COMPACT = {
    "v": "via",
    "f": "from",
    "t": "to",
    "i": "call-id",
    "m": "contact",
    "l": "content-length",
    "c": "content-type",
    "k": "supported",
    "s": "subject",
    "e": "content-encoding",
}
CANONICAL = {
    "via": "Via",
    "from": "From",
    "to": "To",
    "call-id": "Call-ID",
    "cseq": "CSeq",
    "contact": "Contact",
    "content-length": "Content-Length",
    "content-type": "Content-Type",
    "max-forwards": "Max-Forwards",
    "record-route": "Record-Route",
    "www-authenticate": "WWW-Authenticate",
}
REASONS = {
    100: "Trying",
    180: "Ringing",
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    481: "Call/Transaction Does Not Exist",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
}


class SipError(ValueError):
    pass


@dataclass
class Message:
    method: str = ""  # requests
    uri: str = ""
    status: int = 0  # responses
    reason: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)  # lower-case names
    body: bytes = b""

    @property
    def is_request(self) -> bool:
        return bool(self.method)

    def get(self, name: str) -> str | None:
        name = name.lower()
        return next((v for n, v in self.headers if n == name), None)

    def get_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for n, v in self.headers if n == name]

    def cseq(self) -> tuple[int, str]:
        number, _, method = (self.get("cseq") or "").strip().partition(" ")
        if not number.isdigit():
            raise SipError("bad CSeq")
        return int(number), method.strip().upper()

    @property
    def call_id(self) -> str:
        return self.get("call-id") or ""

    def to_bytes(self) -> bytes:
        if self.is_request:
            first = f"{self.method} {self.uri} SIP/2.0"
        else:
            first = f"SIP/2.0 {self.status} {self.reason}"
        lines = [first]
        lines += [f"{CANONICAL.get(n, n.title())}: {v}" for n, v in self.headers]
        lines.append(f"Content-Length: {len(self.body)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body


def parse(data: bytes) -> Message:
    if len(data) > MAX_MESSAGE:
        raise SipError("message too large")
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        head, sep, body = data.partition(b"\n\n")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SipError("not UTF-8") from e
    lines = text.replace("\r\n", "\n").split("\n")
    while lines and not lines[0].strip():  # keep-alive CRLFs before a message
        lines.pop(0)
    if not lines:
        raise SipError("empty message")
    msg = Message()
    first = lines[0].split(" ", 2)
    if len(first) == 3 and first[0] == "SIP/2.0":
        if not (first[1].isdigit() and len(first[1]) == 3):
            raise SipError("bad status line")
        msg.status, msg.reason = int(first[1]), first[2]
    elif len(first) == 3 and first[2] == "SIP/2.0" and first[0].isalpha() and first[0].isupper():
        msg.method, msg.uri = first[0], first[1]
    else:
        raise SipError("bad start line")
    unfolded: list[str] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if not unfolded:
                raise SipError("continuation without a header")
            unfolded[-1] += " " + line.strip()
        elif line:
            unfolded.append(line)
    if len(unfolded) > MAX_HEADERS:
        raise SipError("too many headers")
    for line in unfolded:
        name, colon, value = line.partition(":")
        name = name.strip().lower()
        if not colon or not name or " " in name:
            raise SipError(f"bad header line {line[:40]!r}")
        name = COMPACT.get(name, name)
        if name in ("via", "contact", "record-route") and "," in value:
            msg.headers += [(name, part.strip()) for part in split_commas(value)]
        else:
            msg.headers.append((name, value.strip()))
    length = msg.get("content-length")
    if length is not None:
        if not length.isdigit():
            raise SipError("bad Content-Length")
        if int(length) > len(body):
            raise SipError("body shorter than Content-Length")
        body = body[: int(length)]
    msg.body = body
    for required in ("via", "from", "to", "call-id", "cseq"):
        if msg.get(required) is None:
            raise SipError(f"missing {required}")
    msg.cseq()
    return msg


def split_commas(value: str) -> list[str]:
    """Split a header value on commas outside quotes and <...>."""
    parts, current, quoted, angle = [], "", False, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif ch == "<" and not quoted:
            angle = True
        elif ch == ">" and not quoted:
            angle = False
        if ch == "," and not quoted and not angle:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in (p.strip() for p in parts) if p]


def frame(buffer: bytearray) -> bytes | None:
    """Take one whole message off a TCP stream buffer (Content-Length framing)."""
    while buffer[:2] == b"\r\n":  # keep-alives
        del buffer[:2]
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        if len(buffer) > MAX_MESSAGE:
            raise SipError("header too large")
        return None
    length = 0
    for line in bytes(buffer[:end]).split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() in (b"content-length", b"l"):
            text = value.strip()
            if not text.isdigit():
                raise SipError("bad Content-Length")
            length = int(text)
    total = end + 4 + length
    if total > MAX_MESSAGE:
        raise SipError("message too large")
    if len(buffer) < total:
        return None
    data = bytes(buffer[:total])
    del buffer[:total]
    return data


def param(value: str, name: str) -> str | None:
    """A ;name=value parameter of a header (outside the <uri>)."""
    tail = value.rsplit(">", 1)[-1] if ">" in value else value
    for part in tail.split(";")[1:]:
        key, _, val = part.partition("=")
        if key.strip().lower() == name:
            return val.strip()
    return None


def uri_of(value: str) -> str:
    """The URI of a name-addr or addr-spec header value."""
    if "<" in value and ">" in value:
        return value[value.index("<") + 1 : value.index(">")]
    return value.split(";", 1)[0].strip()


def user_of(value: str) -> str:
    """The user part of a From/To value: the caller's number."""
    uri = uri_of(value)
    scheme, _, rest = uri.partition(":")
    if scheme.lower() not in ("sip", "sips", "tel"):
        return ""
    return rest.split("@", 1)[0].split(";", 1)[0] if "@" in rest or scheme == "tel" else ""


def new_tag() -> str:
    return secrets.token_hex(6)


def new_branch() -> str:
    return "z9hG4bK" + secrets.token_hex(8)


def response(
    request: Message,
    status: int,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> Message:
    """A response copying Via, From, To (with our tag), Call-ID and CSeq."""
    copied = [(n, v) for n, v in request.headers if n in ("via", "from", "call-id", "cseq")]
    to = request.get("to") or ""
    if to_tag and param(to, "tag") is None and status > 100:
        to = f"{to};tag={to_tag}"
    out = [h for h in copied if h[0] == "via"]
    out += [("from", request.get("from") or ""), ("to", to)]
    out += [("call-id", request.call_id), ("cseq", request.get("cseq") or "")]
    out += headers or []
    if request.method == "INVITE" and 100 < status < 300:
        out += [(n, v) for n, v in request.headers if n == "record-route"]
    return Message(status=status, reason=REASONS.get(status, "Unknown"), headers=out, body=body)
