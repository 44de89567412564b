"""Publication -> Forwarders on a recorded frame stream: sharing, gating, keyframe requests."""

from __future__ import annotations

import asyncio
from fractions import Fraction

from aiortc.mediastreams import MediaStreamTrack

from visio_rooms.sfu.forwarding import Forwarder, Publication
from visio_rooms.sfu.passthrough import EncodedFrame

KEY = bytes.fromhex("5043009d012a8002e001") + bytes(1000)
INTER = bytes.fromhex("b1150000") + bytes(300)
VIDEO = Fraction(1, 90000)


class Recorded(MediaStreamTrack):
    """A publisher's receiver as the pass-through hands it out: EncodedFrames, fed by the test."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.queue: asyncio.Queue[EncodedFrame] = asyncio.Queue()
        self.pts = 0

    def feed(self, data: bytes) -> None:
        self.pts += 3000
        self.queue.put_nowait(EncodedFrame(data, self.pts, VIDEO))

    async def recv(self) -> EncodedFrame:
        return await self.queue.get()


async def settle(track: Recorded) -> None:
    while not track.queue.empty():
        await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_subscribers_share_payloads_start_at_a_keyframe_and_get_their_own_timestamps() -> None:
    async def scenario() -> None:
        plis: list[float] = []
        loop = asyncio.get_running_loop()

        async def send_pli() -> bool:
            plis.append(loop.time())
            return True

        track = Recorded()
        pub = Publication("alice", "video", "camera", track, send_pli)
        pub.start()
        first, late = Forwarder("video"), Forwarder("video")
        try:
            first.attach(pub)
            for data in (KEY, INTER, INTER):
                track.feed(data)
            await settle(track)
            got = [await first.recv() for _ in range(3)]
            assert [g.data for g in got] == [KEY, INTER, INTER]

            # A newcomer right after a keyframe went by: the last request was answered,
            # so its own goes out within min_interval (0.1 s), not after a whole
            # throttle interval; and it sees nothing before the next key.
            late.attach(pub)
            async with asyncio.timeout(2):
                while len(plis) < 2:
                    await asyncio.sleep(0.01)
            assert plis[1] - plis[0] < 0.45
            track.feed(INTER)
            track.feed(KEY)
            await settle(track)
            mine = await late.recv()
            theirs = [await first.recv() for _ in range(2)][1]
            assert mine.data is KEY and theirs.data is KEY  # one payload, never copied
            assert mine is not theirs and mine.pts == 0 and theirs.pts == 4 * 3000
        finally:
            first.stop()
            late.stop()
            await pub.stop()

    asyncio.run(scenario())


def test_a_switch_of_source_keeps_timestamps_going_and_waits_for_a_key() -> None:
    async def scenario() -> None:
        async def send_pli() -> bool:
            return True

        a_track, b_track = Recorded(), Recorded()
        b_track.pts = 10_000_000  # another clock origin entirely
        a = Publication("a", "video", "camera", a_track, send_pli)
        b = Publication("b", "video", "camera", b_track, send_pli)
        a.start()
        b.start()
        main = Forwarder("video")
        try:
            main.attach(a)
            a_track.feed(KEY)
            a_track.feed(INTER)
            await settle(a_track)
            assert [(await main.recv()).pts for _ in range(2)] == [0, 3000]
            main.attach(b)  # the speaker changed
            b_track.feed(INTER)  # no reference picture yet: dropped
            b_track.feed(KEY)
            await settle(b_track)
            frame = await main.recv()
            assert frame.data is KEY and frame.pts == 6000
        finally:
            main.stop()
            await a.stop()
            await b.stop()

    asyncio.run(scenario())
