"""The receiving side of the benchmark: nginx answering 200, the fastest server at hand.

nginx from Debian answers a 1 KB POST in C with no Python in the path, so it is far faster
than what it measures; the bench still measures its ceiling in the same run and prints it
as the limit. Its request counter (``stub_status``) is how every delivery scenario, the
baseline included, sees its last receipt: reading it costs nginx one request, where counting
rows in the database under test took that database's process tens of milliseconds of CPU
per poll.
"""

from __future__ import annotations

import http.client
import shutil
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

NGINX_CONF = """
worker_processes 1;
daemon off;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port};
        location = /receipts {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    process: subprocess.Popen[bytes] | None = None
    root: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> Nginx:
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self.root = Path(tempfile.mkdtemp(prefix="hookline-bench-nginx-"))
        conf = self.root / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=self.root, port=self.port))
        self.process = subprocess.Popen(
            [binary, "-c", str(conf), "-p", str(self.root)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if httpx.post(self.url, content=b"{}").status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start; install it with `apt-get install nginx`")

    def requests(self) -> int:
        """Requests nginx has received so far, this one included (``stub_status``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request("GET", "/receipts")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        return int(text.splitlines()[2].split()[2])

    def receipts(self) -> Callable[[], Awaitable[int]]:
        """A counter of the requests received from now on, not counting its own reads."""
        base = self.requests()
        reads = 0

        async def count() -> int:
            nonlocal reads
            reads += 1
            return self.requests() - base - reads

        return count

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
