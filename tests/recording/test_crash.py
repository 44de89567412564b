"""A recorder killed with SIGKILL (backend and recorder process at once, as when the
machine's OOM killer or an admin's `kill -9` on the group strikes) leaves a playable file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.recording.media import holds, probe
from tests.support.stack import ROOT, wait_for

RECORD = textwrap.dedent(
    """
    import asyncio, sys
    from fractions import Fraction
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from bench.recorder import _Pub, opus_loop
    from bench.sfu_clip import encode_clip
    from visio_rooms.recorder.session import Recorder
    from visio_rooms.sfu.passthrough import EncodedFrame

    async def main() -> None:
        clip, voice = encode_clip(), opus_loop()
        cam, mic = _Pub("camera"), _Pub("microphone")
        rec = Recorder("crash", "Crash", Path(sys.argv[1]), None, lambda w, m: None)
        await rec.start()
        rec.follow([mic], cam, "Alice", ["Alice"])
        loop = asyncio.get_running_loop()
        t0, tick = loop.time(), 0
        while True:
            data = clip[tick % len(clip) or (1 if tick else 0)]
            for s in list(cam.sinks):
                s.push(cam, EncodedFrame(data, tick * 3000, Fraction(1, 90000)), tick == 0)
            for k in range(2 if tick % 3 else 1):
                for s in list(mic.sinks):
                    s.push(mic, EncodedFrame(voice[(tick + k) % 50], 0, Fraction(1, 48000)), False)
            tick += 1
            if tick == 150:
                print("recording", flush=True)
            await asyncio.sleep(max(0.0, t0 + tick / 30 - loop.time()))

    asyncio.run(main())
    """
)


def test_sigkill_leaves_a_playable_file(tmp_path: Path) -> None:
    path = tmp_path / "crash.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-c", RECORD, str(path), str(ROOT)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        start_new_session=True,  # its recorder process is in the same group
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"recording"  # its recorder runs
        # Killed once the file holds what is asserted below, however fast this machine is.
        wait_for(lambda: holds(path, 3), timeout=60, interval=0.5, what="3 s written")
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    got = probe(path)  # a fragment cut by the kill is skipped, as a player does
    assert (got.width, got.height) == (1280, 720)
    assert got.duration > 3 and got.audio_seconds > 3, got
    assert got.loudest > 0.05, got
