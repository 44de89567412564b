"""Run part of a test session inside a fresh loopback-only network namespace.

WebRTC tests must see nothing but 127.0.0.1 (TESTING.md): ICE then stays on
loopback and no port can clash with anything else on the machine. The pytest
process moves its main thread into a new namespace (children it starts follow)
and moves back afterwards; this needs root, which CI and the dev machines have.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000


@contextmanager
def loopback_namespace() -> Iterator[None]:
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        if libc.unshare(CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise RuntimeError(
                f"cannot create a network namespace ({os.strerror(err)}): browser tests run as root"
            )
        try:
            subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
            yield
        finally:
            if libc.setns(home, CLONE_NEWNET) != 0:
                raise RuntimeError(
                    f"cannot return to the host network: {os.strerror(ctypes.get_errno())}"
                )
    finally:
        os.close(home)
