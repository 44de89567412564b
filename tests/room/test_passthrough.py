"""The aiortc seam against the real library: two peer connections on loopback."""

from __future__ import annotations

import asyncio
import itertools

import av
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack
from aiortc.mediastreams import MediaStreamTrack

from visio_rooms import rtc
from visio_rooms.sfu import passthrough
from visio_rooms.sfu.keyframes import is_vp8_keyframe


async def connect(sender: RTCPeerConnection, receiver: RTCPeerConnection) -> None:
    await sender.setLocalDescription(await sender.createOffer())
    await receiver.setRemoteDescription(sender.localDescription)
    await receiver.setLocalDescription(await receiver.createAnswer())
    await sender.setRemoteDescription(receiver.localDescription)


async def pair(track, *, forward: bool):
    passthrough.install()
    a, b = rtc.new_peer_connection(), rtc.new_peer_connection()
    a_sender = a.addTrack(track)
    got: asyncio.Future[tuple[object, object]] = asyncio.get_running_loop().create_future()

    @b.on("track")
    def on_track(remote) -> None:
        transceiver = next(t for t in b.getTransceivers() if t.receiver.track is remote)
        if forward:
            passthrough.forward_encoded(transceiver)
        got.set_result((remote, transceiver))

    await connect(a, b)
    remote, transceiver = await asyncio.wait_for(got, 10)
    return a, b, a_sender, remote, transceiver


def test_marked_receiver_hands_out_encoded_vp8_frames_starting_with_a_keyframe() -> None:
    async def scenario() -> None:
        a, b, _, remote, transceiver = await pair(VideoStreamTrack(), forward=True)
        try:
            assert passthrough.is_forwarded(transceiver)
            first = await asyncio.wait_for(remote.recv(), 10)
            assert isinstance(first, passthrough.EncodedFrame)
            assert is_vp8_keyframe(bytes(first))  # a stream starts with a key frame
            second = await asyncio.wait_for(remote.recv(), 10)
            assert second.time_base.denominator == 90000 and second.pts > first.pts
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_unmarked_receiver_still_decodes() -> None:
    async def scenario() -> None:
        a, b, _, remote, transceiver = await pair(VideoStreamTrack(), forward=False)
        try:
            assert not passthrough.is_forwarded(transceiver)
            frame = await asyncio.wait_for(remote.recv(), 10)
            assert isinstance(frame, av.VideoFrame) and frame.width == 640
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_keyframe_request_reaches_the_sender_hook() -> None:
    async def scenario() -> None:
        a, b, a_sender, remote, transceiver = await pair(VideoStreamTrack(), forward=True)
        asked = asyncio.Event()
        passthrough.on_keyframe_request(a_sender, asked.set)
        try:
            await asyncio.wait_for(remote.recv(), 10)  # media flows: the source is known
            assert await passthrough.request_keyframe(transceiver.receiver)
            await asyncio.wait_for(asked.wait(), 10)
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_audio_levels_are_read_from_the_header_extension() -> None:
    async def scenario() -> None:
        levels: list[int] = []
        a, b, _, remote, transceiver = await pair(AudioStreamTrack(), forward=True)
        passthrough.observe_audio_level(transceiver.receiver, levels.append)
        try:
            for _ in range(10):
                packet = await asyncio.wait_for(remote.recv(), 10)
                assert isinstance(packet, passthrough.EncodedFrame) and len(packet) > 0
            assert levels and set(levels) == {127}  # AudioStreamTrack sends silence
        finally:
            await a.close()
            await b.close()

    asyncio.run(scenario())


def test_install_refuses_another_aiortc_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiortc

    monkeypatch.setattr(aiortc, "__version__", "9.9.9")
    with pytest.raises(RuntimeError, match=r"supports aiortc 1\.16\.0 only"):
        passthrough.install()


def test_fast_clock_gives_what_aiortc_clock_gives() -> None:
    import aiortc.clock

    stock_ntp = aiortc.clock.datetime_to_ntp(aiortc.clock.current_datetime())
    stock_ms = int(
        (aiortc.clock.current_datetime() - aiortc.clock.NTP_EPOCH).total_seconds() * 1000
    )
    ours_ntp, ours_ms = passthrough.ntp_now(), passthrough.ms_now()
    assert abs((ours_ntp - stock_ntp) / (1 << 32)) < 0.05  # seconds apart: the two reads
    assert 0 <= ours_ms - stock_ms < 50
    passthrough.install()
    assert aiortc.clock.current_ntp_time is passthrough.ntp_now


def test_lean_sender_delivers_the_frames_it_is_given_byte_for_byte() -> None:
    class Relay(MediaStreamTrack):
        kind = "video"

        def __init__(self) -> None:
            super().__init__()
            self.queue: asyncio.Queue[passthrough.EncodedFrame] = asyncio.Queue()

        async def recv(self) -> passthrough.EncodedFrame:
            return await self.queue.get()

    async def scenario() -> None:
        # A real VP8 stream, received as encoded frames, then sent on by a lean sender.
        a, b, _, source, _ = await pair(VideoStreamTrack(), forward=True)
        relay = Relay()
        c, d = rtc.new_peer_connection(), rtc.new_peer_connection()
        sender = c.addTrack(relay)
        passthrough.forward_sender(sender)
        got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

        @d.on("track")
        def on_track(remote: MediaStreamTrack) -> None:
            passthrough.forward_encoded(
                next(t for t in d.getTransceivers() if t.receiver.track is remote)
            )
            got.set_result(remote)

        sent: list[bytes] = []

        async def pump() -> None:
            while True:
                frame = await source.recv()
                sent.append(bytes(frame))
                relay.queue.put_nowait(frame)

        task = asyncio.create_task(pump())
        try:
            await connect(c, d)
            remote = await asyncio.wait_for(got, 10)
            received = [await asyncio.wait_for(remote.recv(), 10) for _ in range(15)]
            assert [bytes(f) for f in received] == sent[:15]  # whole frames, nothing lost
            assert all(x.pts < y.pts for x, y in itertools.pairwise(received))
            stats = [s for s in (await sender.getStats()).values() if s.type == "outbound-rtp"]
            assert stats and stats[0].packetsSent >= 15  # what the sender reports read
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            for pc in (a, b, c, d):
                await pc.close()

    asyncio.run(scenario())


def test_vp8_packetisation_is_aiortcs_byte_for_byte() -> None:
    from aiortc.codecs.vpx import Vp8Encoder

    for size in (0, 1, 1296, 1297, 5000, 17000):
        frame = bytes(i % 251 for i in range(size))
        for picture_id in (0, 1, 0x7F, 0x80, 0x7FFF):
            assert passthrough.vp8_payloads(frame, picture_id) == Vp8Encoder._packetize(
                frame, picture_id
            )


def test_forwarder_pushes_whole_frames_into_a_lean_sender() -> None:
    from visio_rooms.sfu.forwarding import Forwarder, Publication

    async def scenario() -> None:
        # publisher -> (a, b) -> Publication -> Forwarder -> lean sender (c, d) -> subscriber
        a, b, _, source, transceiver = await pair(VideoStreamTrack(), forward=True)

        async def send_pli() -> bool:
            return await passthrough.request_keyframe(transceiver.receiver)

        pub = Publication("p", "video", "camera", source, send_pli)
        seen: list[bytes] = []
        forwarder = Forwarder("video", on_first_frame=lambda: seen.append(b"first"))
        c, d = rtc.new_peer_connection(), rtc.new_peer_connection()
        passthrough.forward_sender(c.addTrack(forwarder))
        got: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()

        @d.on("track")
        def on_track(remote: MediaStreamTrack) -> None:
            passthrough.forward_encoded(
                next(t for t in d.getTransceivers() if t.receiver.track is remote)
            )
            got.set_result(remote)

        pub.start()
        forwarder.attach(pub)
        try:
            await connect(c, d)
            remote = await asyncio.wait_for(got, 10)
            frames = [await asyncio.wait_for(remote.recv(), 10) for _ in range(20)]
            assert forwarder._deliver is not None  # push mode, not recv()
            assert is_vp8_keyframe(bytes(frames[0])) and seen == [b"first"]
            assert all(x.pts < y.pts for x, y in itertools.pairwise(frames))
        finally:
            forwarder.stop()
            await pub.stop()
            for pc in (a, b, c, d):
                await pc.close()

    asyncio.run(scenario())
