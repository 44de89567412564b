"""The aiortc seam against the real library: two peer connections on loopback."""

from __future__ import annotations

import asyncio

import av
import pytest
from aiortc import AudioStreamTrack, RTCPeerConnection, VideoStreamTrack

from conference_backend import rtc
from conference_backend.sfu import passthrough
from conference_backend.sfu.keyframes import is_vp8_keyframe


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
            assert isinstance(first, av.Packet)
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
                assert isinstance(packet, av.Packet)
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
