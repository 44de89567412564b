"""The gateway's pure parts: SIP, SDP, RTP and RFC 4733, G.711, digest, rate limits, mix-minus."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from conference_backend.phone import digest, g711, rtp, sdp, sip
from conference_backend.phone.ratelimit import RateLimiter
from visio_rooms.phone_bridge import SilenceGate, masked_name
from visio_rooms.phone_mixer import mix_minus
from visio_rooms.phone_voice import OpusVoice, VoiceTrack, level_of

INVITE = (
    b"INVITE sip:visio@10.0.0.1 SIP/2.0\r\n"
    b"v: SIP/2.0/UDP 10.0.0.2:5060;branch=z9hG4bK1, SIP/2.0/UDP 10.0.0.3;branch=z9hG4bK2\r\n"
    b'f: "Caller, Jr" <sip:+33612341234@trunk>;tag=abc\r\n'
    b"t: <sip:visio@10.0.0.1>\r\n"
    b"i: call-1@trunk\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Subject: a folded\r\n"
    b" header value\r\n"
    b"Record-Route: <sip:p1;lr>, <sip:p2;lr>\r\n"
    b"m: <sip:+33612341234@10.0.0.2:5060>\r\n"
    b"c: application/sdp\r\n"
    b"l: 4\r\n"
    b"\r\n"
    b"v=0\r\nextra"
)


def test_sip_parses_compact_folded_and_multi_value_headers() -> None:
    msg = sip.parse(INVITE)
    assert msg.method == "INVITE" and msg.uri == "sip:visio@10.0.0.1"
    assert len(msg.get_all("via")) == 2
    assert msg.get("subject") == "a folded header value"
    assert msg.call_id == "call-1@trunk"
    assert msg.cseq() == (1, "INVITE")
    assert msg.body == b"v=0\r"  # Content-Length wins over what follows
    assert sip.user_of(msg.get("from") or "") == "+33612341234"
    assert sip.param(msg.get("from") or "", "tag") == "abc"
    assert msg.get_all("record-route") == ["<sip:p1;lr>", "<sip:p2;lr>"]


def test_sip_response_copies_the_transaction_and_adds_our_tag() -> None:
    msg = sip.parse(INVITE)
    ok = sip.response(msg, 200, to_tag="xyz", body=b"sdp")
    again = sip.parse(ok.to_bytes())
    assert again.status == 200 and again.reason == "OK"
    assert sip.param(again.get("to") or "", "tag") == "xyz"
    assert again.get_all("via") == msg.get_all("via")
    assert again.get_all("record-route") == msg.get_all("record-route")
    assert again.body == b"sdp"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"HELLO\r\n\r\n",
        b"INVITE sip:x SIP/3.0\r\n\r\n",
        b"INVITE sip:x SIP/2.0\r\nVia: a\r\n\r\n",  # no From/To/Call-ID/CSeq
        b"INVITE sip:x SIP/2.0\r\n continuation first\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        INVITE.replace(b"l: 4", b"l: 400"),  # body shorter than announced
        INVITE.replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"),
        b"\xff\xfe" * 10,
        INVITE + b"x" * sip.MAX_MESSAGE,
        b"INVITE sip:x SIP/2.0\r\n" + b"X-A: b\r\n" * 200 + b"\r\n",
    ],
)
def test_sip_rejects_malformed_input(data: bytes) -> None:
    with pytest.raises(sip.SipError):
        sip.parse(data)


def test_sip_tcp_framing_waits_for_the_whole_body_and_bounds_headers() -> None:
    body_at = INVITE.index(b"\r\n\r\n") + 4
    buffer = bytearray(b"\r\n" + INVITE[: body_at + 2])  # a keep-alive, half the body
    assert sip.frame(buffer) is None
    buffer += INVITE[body_at + 2 :]
    assert sip.frame(buffer) == INVITE[: body_at + 4]
    assert bytes(buffer) == b"\nextra"  # what follows waits for the next message
    endless = bytearray(b"INVITE sip:x SIP/2.0\r\nX: " + b"a" * sip.MAX_MESSAGE)
    with pytest.raises(sip.SipError):
        sip.frame(endless)


OFFER = """v=0
o=- 1 1 IN IP4 192.0.2.1
s=-
c=IN IP4 192.0.2.1
t=0 0
m=audio 4000 RTP/AVP 0 8 96 97
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:96 opus/48000/2
a=rtpmap:97 telephone-event/8000
m=video 4002 RTP/AVP 99
c=IN IP4 192.0.2.9
"""


def test_sdp_takes_the_callers_first_g711_codec_and_its_telephone_event_type() -> None:
    neg = sdp.negotiate(OFFER)
    assert (neg.codec, neg.payload_type, neg.dtmf_payload_type) == ("PCMU", 0, 97)
    assert (neg.address, neg.port) == ("192.0.2.1", 4000)
    pcma = sdp.negotiate(OFFER.replace("RTP/AVP 0 8 96 97", "RTP/AVP 96 8 0"))
    assert (pcma.codec, pcma.payload_type, pcma.dtmf_payload_type) == ("PCMA", 8, None)
    answer = sdp.answer(neg, "198.51.100.7", 30000, session=5)
    assert "m=audio 30000 RTP/AVP 0 97" in answer
    assert "a=rtpmap:97 telephone-event/8000" in answer
    assert "c=IN IP4 198.51.100.7" in answer
    assert sdp.negotiate(answer).port == 30000


@pytest.mark.parametrize(
    "offer",
    [
        OFFER.replace("RTP/AVP 0 8 96 97", "RTP/AVP 96"),  # opus only
        "v=0\nm=video 4000 RTP/AVP 99\n",
        OFFER.replace("c=IN IP4 192.0.2.1\n", ""),  # audio without address
        OFFER.replace("4000", "0"),
        "x" * (sdp.MAX_SDP + 1),
    ],
)
def test_sdp_refuses_what_it_cannot_answer(offer: str) -> None:
    with pytest.raises(sdp.SdpError):
        sdp.negotiate(offer)


def test_rtp_round_trip_with_csrc_extension_and_padding() -> None:
    packet = rtp.RtpPacket(8, 65535, 2**32 - 1, 1234, b"\xd5" * 160, True)
    assert rtp.parse(rtp.build(packet)) == packet
    raw = bytearray(rtp.build(packet))
    raw[0] |= 0x10 | 0x20 | 0x01  # extension, padding, one CSRC
    fancy = bytes(raw[:12]) + b"CSRC" + b"\xbe\xde\x00\x01" + b"EXT1" + packet.payload + b"\x00\x02"
    assert rtp.parse(fancy).payload == packet.payload
    with pytest.raises(rtp.RtpError):
        rtp.parse(b"\x00" * 12)
    with pytest.raises(rtp.RtpError):
        rtp.parse(b"\x80")


def event_packet(key: str, ts: int, end: bool, seq: int) -> rtp.RtpPacket:
    return rtp.RtpPacket(101, seq, ts, 7, rtp.event_payload(key, end, 160 * seq))


def test_rfc4733_reports_each_key_once_despite_updates_end_repeats_and_retransmissions() -> None:
    decoder = rtp.DtmfDecoder()
    presses = []
    for ts, key in ((1000, "5"), (3000, "5"), (5000, "#")):
        packets = [event_packet(key, ts, False, i) for i in range(3)]
        packets += [event_packet(key, ts, True, 3)] * 3  # the end, sent three times
        packets += packets[:2]  # late retransmissions
        presses += [k for k in map(decoder.feed, packets) if k is not None]
    assert presses == ["5", "5", "#"]  # the same key again: a new timestamp, a new press
    assert decoder.feed(rtp.RtpPacket(101, 1, 9000, 7, b"\x10\x80\x00\xa0")) is None  # event 16
    assert decoder.feed(rtp.RtpPacket(101, 1, 9001, 7, b"\x01")) is None


def test_g711_round_trip_keeps_speech() -> None:
    t = np.arange(8000) / 8000
    tone = (np.sin(2 * np.pi * 440 * t) * 12000).astype(np.int16)
    for codec in ("PCMA", "PCMU"):
        encoded = g711.encode(tone, codec)
        assert len(encoded) == len(tone)
        back = g711.decode(encoded, codec).astype(np.float64)
        error = np.sqrt(np.mean((back - tone) ** 2))
        assert error < 200, codec  # ~38 dB below the tone
    assert g711.encode(np.zeros(4, dtype=np.int16), "PCMA") == b"\xd5" * 4
    assert g711.encode(np.zeros(4, dtype=np.int16), "PCMU") == b"\xff" * 4
    extremes = np.array([-32768, 32767], dtype=np.int16)
    assert np.all(np.sign(g711.decode(g711.encode(extremes, "PCMU"), "PCMU")) == [-1, 1])


def test_digest_accepts_the_password_and_nothing_else() -> None:
    key, now = b"k" * 32, 1_000_000.0
    nonce = digest.new_nonce(key, now)
    assert digest.nonce_valid(key, nonce, now + 10)
    assert not digest.nonce_valid(key, nonce, now + digest.NONCE_TTL + 1)
    assert not digest.nonce_valid(b"other" * 8, nonce, now)

    def md5(s: str) -> str:
        return hashlib.md5(s.encode()).hexdigest()

    ha1, ha2 = md5("trunk:visio:pw"), md5("INVITE:sip:visio@gw")
    good = md5(f"{ha1}:{nonce}:00000001:cn:auth:{ha2}")
    header = (
        f'Digest username="trunk", realm="visio", nonce="{nonce}", uri="sip:visio@gw", '
        f'response="{good}", qop=auth, nc=00000001, cnonce="cn", algorithm=MD5'
    )
    assert digest.verify(header, "INVITE", "trunk", "pw", "visio", key, now)
    assert not digest.verify(header, "INVITE", "trunk", "wrong", "visio", key, now)
    assert not digest.verify(header, "BYE", "trunk", "pw", "visio", key, now)
    assert not digest.verify(
        header.replace("trunk", "other", 1), "INVITE", "trunk", "pw", "visio", key, now
    )
    assert not digest.verify(header, "INVITE", "trunk", "pw", "visio", key, now + 3600)
    assert not digest.verify("Basic dHJ1bms6cHc=", "INVITE", "trunk", "pw", "visio", key, now)
    assert 'nonce="' in digest.challenge("visio", nonce)


def test_rate_limiter_blocks_after_repeated_failures_for_a_while() -> None:
    limiter = RateLimiter(limit=3, window=60, block=300)
    assert not limiter.failure("a", 0) and not limiter.failure("a", 10)
    assert not limiter.failure("a", 100)  # the first two slid out of the window
    assert not limiter.failure("a", 110)
    assert limiter.failure("a", 120)
    assert limiter.blocked("a", 121) and not limiter.blocked("b", 121)
    assert limiter.blocked("a", 419) and not limiter.blocked("a", 421)
    small = RateLimiter(limit=2, max_keys=10)
    for i in range(100):
        small.failure(f"k{i}", 0)
    assert len(small._failures) <= 10


def test_mix_minus_gives_each_leg_everyone_but_itself() -> None:
    a = np.full(160, 1000, dtype=np.int32)
    b = np.full(160, 300, dtype=np.int32)
    web = np.full(160, 20, dtype=np.int16)
    out = mix_minus([a, b, None], [web, None])
    assert out[0] is not None and int(out[0][0]) == 320
    assert out[1] is not None and int(out[1][0]) == 1020
    assert out[2] is not None and int(out[2][0]) == 1320  # a silent leg hears everyone
    assert mix_minus([None, None], [None]) == [None, None]
    loud = np.full(160, 30000, dtype=np.int32)
    clipped = mix_minus([None], [loud.astype(np.int16), loud.astype(np.int16)])[0]
    assert clipped is not None and int(clipped.max()) == 32767


def test_levels_and_names() -> None:
    assert level_of(np.zeros(160, dtype=np.int16)) == 127
    assert level_of(np.full(160, 32767, dtype=np.int16)) == 0
    quiet = level_of((np.ones(160) * 30).astype(np.int16))
    loud = level_of((np.ones(160) * 10000).astype(np.int16))
    assert loud < 55 < quiet  # the speaker detector's voice threshold lies between
    assert masked_name("+33 6 12 34 12 34", "fr") == "Téléphone …12 34"
    assert masked_name("sip-anonymous", "en") == "Phone"


def test_silence_is_not_sent_but_word_endings_are_and_the_clock_runs_on() -> None:
    gate = SilenceGate()
    speech, hiss = 20, 70  # -20 dBov talking, -70 dBov line noise
    sent = [gate.passes(level) for level in [hiss] * 5 + [speech] * 3 + [hiss] * 40 + [speech]]
    assert sent[:5] == [False] * 5  # a listening caller sends nothing
    assert all(sent[5:8])
    assert sent[8 : 8 + SilenceGate.HANGOVER_FRAMES] == [True] * SilenceGate.HANGOVER_FRAMES
    assert not any(sent[8 + SilenceGate.HANGOVER_FRAMES : 48]) and sent[48]

    track = VoiceTrack()
    voice = OpusVoice(track)
    tone = (np.sin(np.arange(160) / 3) * 8000).astype(np.int16)
    for _ in range(3):
        voice.encode(tone)
    voice.skip(160 * 50)  # one second not sent
    voice.encode(tone)
    stamps = [f.pts for f in track._queue]
    assert len(stamps) >= 2 and stamps[-1] - stamps[-2] == 960 * 51
