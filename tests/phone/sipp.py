"""Real sipp calls against the gateway, and a small RTP receiver standing in for the caller's ear.

sipp plays captures (play_pcap_audio) but cannot judge audio: when a test needs
to know what the caller hears, the INVITE's SDP points the gateway's RTP at an
RtpReceiver of ours instead of at sipp's own media port.
"""

from __future__ import annotations

import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from conference_backend.phone import g711, rtp

SIPP = "/usr/bin/sipp"

HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="visio dial-in">
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media_port} RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-15
    ]]>
  </send>
  <recv response="100" optional="true"/>
{auth}  <recv response="200" rtd="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
"""

AUTH = """  <recv response="401" auth="true"/>
  <send>
    <![CDATA[
      ACK sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0
    ]]>
  </send>
  <send retrans="500">
    <![CDATA[
      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 2 INVITE
      Contact: <sip:{caller}@[local_ip]:[local_port];transport=[transport]>
      [authentication username={user} password={password}]
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=caller 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio {media_port} RTP/AVP 8 0 101
      a=rtpmap:8 PCMA/8000
      a=rtpmap:101 telephone-event/8000
    ]]>
  </send>
  <recv response="100" optional="true"/>
"""

BYE = """  <send retrans="500">
    <![CDATA[
      BYE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{caller}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 3 BYE
      Max-Forwards: 70
      Content-Length: 0
    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

WAIT_BYE = """  <recv request="BYE" timeout="{timeout}"/>
  <send>
    <![CDATA[
      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0
    ]]>
  </send>
</scenario>
"""


def play(capture: Path) -> str:
    return f'  <nop><action><exec play_pcap_audio="{capture}"/></action></nop>\n'


def pause(ms: int) -> str:
    return f'  <pause milliseconds="{ms}"/>\n'


def info(key: str) -> str:
    return f"""  <send>
    <![CDATA[
      INFO sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: "Caller" <sip:{{caller}}@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: [cseq] INFO
      Content-Type: application/dtmf-relay
      Content-Length: [len]

      Signal={key}
      Duration=160
    ]]>
  </send>
  <recv response="200"/>
"""


def scenario(
    path: Path,
    steps: str,
    *,
    caller: str = "0612341234",
    media_port: int | None = None,
    end: str = "bye",
    timeout_ms: int = 30000,
    auth: tuple[str, str] | None = None,
) -> Path:
    fill = {
        "caller": caller,
        "media_port": str(media_port) if media_port else "[media_port]",
        "timeout": str(timeout_ms),
        "user": auth[0] if auth else "",
        "password": auth[1] if auth else "",
    }
    auth_part = AUTH if auth else ""
    tail = {"bye": BYE, "wait_bye": WAIT_BYE, "none": "</scenario>\n"}[end]
    text = HEAD.replace("{auth}", auth_part) + steps + tail
    for name, value in fill.items():
        text = text.replace("{" + name + "}", value)
    path.write_text(text)
    return path


@dataclass
class Sipp:
    """One sipp process placing one call."""

    proc: subprocess.Popen[bytes]
    log: Path

    def wait(self, timeout: float = 90) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def free_udp_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def call(
    scenario_file: Path,
    gateway: tuple[str, int],
    *,
    local_ip: str = "127.0.0.1",
    transport: str = "u1",
    service: str = "visio",
) -> Sipp:
    log = scenario_file.with_suffix(".log")
    argv = [
        SIPP,
        f"{gateway[0]}:{gateway[1]}",
        "-sf",
        str(scenario_file),
        "-s",
        service,
        "-m",
        "1",
        "-i",
        local_ip,
        "-p",
        str(free_udp_port(local_ip)),
        "-mi",
        local_ip,
        "-mp",
        str(free_udp_port(local_ip)),
        "-t",
        transport,
        "-nostdin",
        "-timeout",
        "120s",
        "-max_recv_loops",
        "1000",
    ]
    out = open(log, "wb")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return Sipp(proc, log)


@dataclass
class RtpReceiver:
    """What the caller hears: G.711 packets received, decoded, with their arrival time."""

    host: str = "127.0.0.1"
    frames: list[tuple[float, np.ndarray]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.host, 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                packet = rtp.parse(data)
            except rtp.RtpError:
                continue
            codec = {8: "PCMA", 0: "PCMU"}.get(packet.payload_type)
            if codec:
                self.frames.append((time.monotonic(), g711.decode(packet.payload, codec)))

    def voiced_since(self, since: float, rms: float = 300.0) -> float:
        """Seconds of audio louder than `rms` received after `since` (monotonic)."""
        frames = [pcm for t, pcm in list(self.frames) if t >= since]
        loud = [p for p in frames if np.sqrt(np.mean(np.square(p, dtype=np.float64))) > rms]
        return len(loud) * 0.02

    def heard_since(self, since: float) -> float:
        return sum(0.02 for t, _ in list(self.frames) if t >= since)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
