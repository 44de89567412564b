"""deploy/nginx/visio.conf run for real: Debian's nginx in the foreground, in a folder.

The shipped file is a production configuration (ports 80 and 443, node addresses
10.0.0.x, certificates under /etc/letsencrypt, logs under /var/log/nginx). Tests
rewrite exactly those, with `render_site`: each rewrite must match, so a change
to the shipped file that the tests would silently stop exercising fails here.
Everything nginx writes (pid, logs, temporary files) stays in the folder.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.support.stack import ROOT, wait_for

NGINX = "/usr/sbin/nginx"
OPENSSL = "/usr/bin/openssl"
SHIPPED = ROOT / "deploy" / "nginx" / "visio.conf"
# The names the shipped file serves, and what tests reach them as: the portal's host
# by name, the CalDAV host by address (nginx matches server_name against the Host
# header without its port, and an address is a valid server_name).
PORTAL_HOST, CALDAV_HOST = "localhost", "127.0.0.1"

# What wraps the site file, like Debian's /etc/nginx/nginx.conf (its http-level TLS
# defaults included: the site file must override them, not clash with them).
MAIN = """
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 512; }}
http {{
    sendfile on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;
    ssl_prefer_server_ciphers on;
    access_log {dir}/access.log;
    client_body_temp_path {dir}/temp/body;
    proxy_temp_path {dir}/temp/proxy;
    fastcgi_temp_path {dir}/temp/fastcgi;
    uwsgi_temp_path {dir}/temp/uwsgi;
    scgi_temp_path {dir}/temp/scgi;
    include {site};
}}
"""


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path


def self_signed(folder: Path) -> Certificate:
    """A self-signed certificate for both test names, made the usual way."""
    folder.mkdir(parents=True, exist_ok=True)
    files = Certificate(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        [
            OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "2", "-subj", f"/CN={PORTAL_HOST}",
            "-addext", f"subjectAltName=DNS:{PORTAL_HOST},IP:{CALDAV_HOST}",
            "-keyout", str(files.key), "-out", str(files.cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )  # fmt: skip
    return files


def _rewrite(text: str, pattern: str, replacement: str, what: str) -> str:
    """re.sub that insists on matching: the shipped file must still have `what`."""
    new, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count, f"deploy/nginx/visio.conf no longer has {what} ({pattern!r})"
    return new


def _upstream(text: str, name: str, servers: list[str]) -> str:
    """The `upstream name { … }` block with its server lines replaced by `servers`."""
    found = re.search(rf"^upstream {name} \{{\n(.*?)^\}}", text, flags=re.MULTILINE | re.DOTALL)
    assert found, f"deploy/nginx/visio.conf no longer has upstream {name}"
    kept = [line for line in found.group(1).splitlines() if not line.strip().startswith("server ")]
    lines = kept + [f"    server {s} max_fails=1 fail_timeout=10s;" for s in servers]
    return text[: found.start(1)] + "\n".join(lines) + "\n" + text[found.end(1) :]


def local_paths(text: str, folder: Path, cert: Certificate) -> str:
    """The shipped file with only its files moved into `folder` (certificates, logs)."""
    text = _rewrite(text, r"ssl_certificate\s+\S+;", f"ssl_certificate {cert.cert};", "certs")
    text = _rewrite(text, r"ssl_certificate_key\s+\S+;", f"ssl_certificate_key {cert.key};", "keys")
    text = _rewrite(text, r"/var/log/nginx/", f"{folder}/", "log files")
    return _rewrite(text, r"root /var/www/letsencrypt;", f"root {folder}/acme;", "ACME root")


def render_site(
    text: str,
    folder: Path,
    cert: Certificate,
    *,
    http_port: int,
    https_port: int,
    nodes: list[str],
    caldav: str,
) -> str:
    """The shipped file on loopback: ports, node addresses, names, certificates, logs."""
    text = local_paths(text, folder, cert)
    text = _rewrite(text, r"^(\s*)listen \[::\]:\d+.*\n", "", "IPv6 listen lines")
    text = _rewrite(text, r"listen 80;", f"listen 127.0.0.1:{http_port};", "listen 80")
    text = _rewrite(text, r"listen 443 ", f"listen 127.0.0.1:{https_port} ", "listen 443")
    text = _upstream(text, "visio_nodes", nodes)
    text = _upstream(text, "visio_caldav", [caldav])
    text = _rewrite(text, r"\bcaldav\.example\.org\b", CALDAV_HOST, "the CalDAV host's name")
    return _rewrite(text, r"\bvisio\.example\.org\b", PORTAL_HOST, "the portal's name")


class Nginx:
    """nginx in the foreground, its whole configuration and state under `folder`."""

    def __init__(self, folder: Path, site: str, https_port: int = 0) -> None:
        self.folder = folder
        self.https_port = https_port
        self.proc: subprocess.Popen[bytes] | None = None
        (folder / "temp").mkdir(parents=True, exist_ok=True)
        (folder / "visio.conf").write_text(site)
        self.conf = folder / "nginx.conf"
        self.conf.write_text(MAIN.format(dir=folder, site=folder / "visio.conf"))

    def _command(self, *extra: str) -> list[str]:
        folder = str(self.folder)
        return [NGINX, "-p", folder, "-c", str(self.conf), "-e", f"{folder}/error.log", *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t`: the configuration's syntax and files, nothing started."""
        return subprocess.run(self._command("-t"), capture_output=True, text=True, timeout=60)

    def start(self) -> Nginx:
        self.proc = subprocess.Popen(
            self._command(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

        def listening() -> bool:
            assert self.proc is not None and self.proc.poll() is None, self.error_log()
            with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                return True

        wait_for(listening, timeout=30, what="nginx")
        return self

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)  # fast: open WebSockets are not waited for
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def error_log(self) -> str:
        path = self.folder / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def upstreams(self, log: str = "visio.access.log") -> list[str]:
        """The node that answered each request, in order (the shipped log format)."""
        text = (self.folder / log).read_text(errors="replace")
        return re.findall(r"upstream=(\S+)", text)
