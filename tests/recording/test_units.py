"""The recorder's pure parts: mixing, layout, URL masking, retention, the store."""

from __future__ import annotations

import datetime as dt
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tests.support.database import open_db
from visio_core.recordings import Recording, Recordings, expired
from visio_rooms.recorder import layout
from visio_rooms.recorder.compositor import Compositor
from visio_rooms.recorder.mixer import MAX_SAMPLES, PRIME_SAMPLES, Mixer, VoiceBuffer, mix
from visio_rooms.recorder.streamer import describe, mask_url, valid_stream_url


# mixing --------------------------------------------------------------------------
def test_mix_sums_and_saturates() -> None:
    a = np.array([1000, 30000, -30000], dtype=np.int32)
    b = np.array([500, 10000, -10000], dtype=np.int32)
    assert mix([a, b], 4).tolist() == [1500, 32767, -32768, 0]
    assert mix([], 3).tolist() == [0, 0, 0]


def test_voice_buffer_primes_then_plays_and_bounds_its_delay() -> None:
    buf = VoiceBuffer()
    buf.put(np.ones(960, np.int16))
    assert len(buf.take(960)) == 0  # not primed yet: silence, nothing consumed
    buf.put(np.ones(PRIME_SAMPLES, np.int16))
    assert buf.take(960).tolist() == [1] * 960
    for _ in range(40):
        buf.put(np.ones(960, np.int16))
    assert buf.buffered <= MAX_SAMPLES


def test_mixer_decodes_opus_and_mixes_two_voices() -> None:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "s16"  # type: ignore[attr-defined]
    enc.time_base = Fraction(1, 48000)
    t = np.arange(960 * 10) / 48000
    tone = (np.sin(2 * np.pi * 440 * t) * 8000).astype(np.int16)
    packets = []
    for i in range(10):
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone[i * 960 : (i + 1) * 960], 2).reshape(1, -1),
            format="s16",
            layout="stereo",
        )
        frame.sample_rate = 48000
        packets += [bytes(p) for p in enc.encode(frame)]  # type: ignore[attr-defined]
    mixer = Mixer()
    for p in packets:
        mixer.decode("alice", p)
        mixer.decode("bob", p)
    out = mixer.pull(4800)
    level = float(np.sqrt(np.mean(out.astype(np.float64) ** 2)))
    assert level > 6000  # two voices of ~5600 RMS each, summed (after codec delay)
    mixer.remove("bob")
    assert set(mixer.voices) == {"alice"}


# layout ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("src", "box"),
    [
        ((640, 480), layout.Box(160, 0, 960, 720)),
        ((1920, 1080), layout.Box(0, 0, 1280, 720)),
        ((480, 640), layout.Box(370, 0, 540, 720)),
        ((2560, 800), layout.Box(0, 160, 1280, 400)),
        ((0, 0), layout.Box(0, 0, 1280, 720)),
    ],
)
def test_fit_keeps_aspect_and_even_sizes(src: tuple[int, int], box: layout.Box) -> None:
    got = layout.fit(*src)
    assert got == box
    assert got.width % 2 == got.height % 2 == got.x % 2 == got.y % 2 == 0


def test_compositor_shows_a_card_then_the_source_with_its_name() -> None:
    c = Compositor("Comité technique")
    c.names = ("Alice",)
    card = c.picture()
    assert (card.width, card.height, card.format.name) == (1280, 720, "yuv420p")
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = 640, 480, "yuv420p"  # type: ignore[attr-defined]
    enc.time_base = Fraction(1, 30)
    frame = av.VideoFrame.from_ndarray(np.full((480, 640, 3), 200, np.uint8), format="rgb24")
    packets = enc.encode(frame.reformat(format="yuv420p"))  # type: ignore[attr-defined]
    packets += enc.encode(None)  # type: ignore[attr-defined]
    c.want("cam", "Alice")
    assert c.needs_keyframe
    c.decode("other", bytes(packets[0]), True)  # not the source shown: ignored
    assert c.decoded == 0
    c.decode("cam", bytes(packets[0]), True)
    assert c.decoded == 1 and not c.needs_keyframe
    y = c.picture().to_ndarray()[:720]
    assert y[300, 10] < 30 and y[300, 640] > 150  # black bar left, picture in the middle
    assert y[720 - 24 - 24, 24 + 4] < 60  # the dark name label, bottom left


# URL masking ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("rtmp://a.rtmp.youtube.com/live2/abcd-1234-efgh", "rtmp://a.rtmp.youtube.com/live2/***"),
        ("rtmps://live.example.org:443/app/key?token=x", "rtmps://live.example.org:443/app/***"),
        ("rtmp://user:pw@host/app", "rtmp://host/app/***"),
        ("rtmp://host/app", "rtmp://host/app"),
        ("not a url", "***"),
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_errors_are_described_without_the_key() -> None:
    url = "rtmp://127.0.0.1:1/live/SECRET"
    text = describe(ConnectionRefusedError(111, f"Connection refused: '{url}'"), url)
    assert "SECRET" not in text and "rtmp://127.0.0.1:1/live/***" in text


def test_only_rtmp_urls_are_streamed() -> None:
    assert valid_stream_url("rtmp://h/app/k") and valid_stream_url("rtmps://h/app/k")
    assert not valid_stream_url("http://h/app/k") and not valid_stream_url("file:///etc/passwd")


# retention and the store -------------------------------------------------------------
def rec(state: str, ended: str | None, started: str = "2026-01-01T10:00:00Z") -> Recording:
    return Recording(1, "room", "occ", "alice", "t", state, False, started, ended)


def test_expired_selects_finished_recordings_past_the_retention() -> None:
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    old = rec("done", "2026-01-01T11:00:00Z")
    recent = rec("done", "2026-02-25T11:00:00Z", started="2026-02-25T10:00:00Z")
    running = rec("recording", None)
    assert expired([old, recent, running], now, 30) == [old]
    assert expired([old, recent, running], now, 0) == []  # 0: kept forever


def test_store_segments_finish_notify_and_delete(tmp_path: Path) -> None:
    store = Recordings(open_db(tmp_path / "db.sqlite3"))
    rid = store.open("room1", "20260101", "alice", "Comité")
    assert store.open("room1", "20260101", "alice", "Comité") == rid  # same occurrence
    files = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    for f in files:
        f.write_bytes(b"x" * 10)
        store.end_segment(store.add_segment(rid, f), 10)
    store.add_segment(rid, tmp_path / "c.mp4")  # left open by a killed backend
    assert store.close_abandoned() == 1
    found = store.get(rid)
    assert found is not None and found.state == "done" and found.size == 20
    assert all(s.ended_at for s in found.segments)
    assert store.mark_notified(rid) and not store.mark_notified(rid)
    assert store.delete(rid) is not None
    assert store.get(rid) is None and not any(f.exists() for f in files)


def test_a_stuck_worker_never_makes_the_backlog_grow_for_ever() -> None:
    from visio_rooms.recorder.session import BACKLOG, Recorder, _Sink
    from visio_rooms.sfu.passthrough import EncodedFrame

    recorder = Recorder("room", "t", None, None, lambda w, m: None)  # worker never started
    sink = _Sink(recorder, video=True)
    frame = EncodedFrame(b"\x00" * 10, 0, Fraction(1, 90000))
    for _ in range(BACKLOG + 100):
        sink.push(None, frame, False)  # type: ignore[arg-type]
    assert recorder.inbox.qsize() == BACKLOG + 1 and recorder.dropped > 0
    while recorder.inbox.qsize() > 10:
        recorder.inbox.get(timeout=5)
    sink.push(None, frame, True)  # type: ignore[arg-type]
    items = [recorder.inbox.get(timeout=5) for _ in range(recorder.inbox.qsize())]
    assert items[-2] == ("gap",) and items[-1][0] == "v"  # the picture restarts at a key


def test_recording_settings() -> None:
    from visio_core.settings import SettingsError, resolve

    s = resolve({}, {})
    assert (s.recording_days, s.recording_preset, s.record_start) == (30, "veryfast", "open")
    s = resolve(
        {},
        {
            "VISIO_RECORDING_DAYS": "0",
            "VISIO_RECORDING_PRESET": "UltraFast",
            "VISIO_RECORD_START": "button",
        },
    )
    assert (s.recording_days, s.recording_preset, s.record_start) == (0, "ultrafast", "button")
    for bad in (
        {"VISIO_RECORDING_DAYS": "-1"},
        {"VISIO_RECORDING_PRESET": "placebo"},
        {"VISIO_RECORD_START": "later"},
    ):
        with pytest.raises(SettingsError):
            resolve({}, bad)
