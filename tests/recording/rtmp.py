"""A real RTMP ingest: Debian's nginx with libnginx-mod-rtmp, in the foreground, own config."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from pathlib import Path

from tests.support.stack import free_port, wait_for

NGINX = "/usr/sbin/nginx"
MODULE = "/usr/lib/nginx/modules/ngx_rtmp_module.so"

CONFIG = """
load_module {module};
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 64; }}
rtmp {{
    server {{
        listen 127.0.0.1:{port};
        application live {{
            live on;
            record all;
            record_unique on;
            record_path {dir}/flv;
        }}
    }}
}}
"""


class RtmpServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, key: str) -> str:
        return f"rtmp://127.0.0.1:{self.port}/live/{key}"

    def recorded(self) -> list[Path]:
        return sorted((self.folder / "flv").glob("*.flv"))

    def start(self) -> RtmpServer:
        (self.folder / "flv").mkdir(parents=True, exist_ok=True)
        conf = self.folder / "nginx.conf"
        conf.write_text(CONFIG.format(module=MODULE, dir=self.folder, port=self.port))
        self.proc = subprocess.Popen(
            [NGINX, "-p", str(self.folder), "-c", str(conf), "-e", str(self.folder / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, "nginx exited"
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True

        wait_for(listening, timeout=10, what="nginx rtmp")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGQUIT)  # graceful: the .flv files are finalised
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None
