"""A real ``hookline serve`` process and a real HTTP receiver on loopback, for e2e tests."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web

ADMIN_TOKEN = "hl_admin_e2e-token-for-the-end-to-end-suite"
ENCRYPTION_KEYS = "e2e:aG9va2xpbmUtZTJlLXRlc3RzLWtleS0zMi1ieXRlcyE="
"""Every process encrypts secrets at rest, as production must; a test that wants none sets
``HOOKLINE_ENCRYPTION_KEYS`` to the empty string in its ``env``."""
START_TIMEOUT_SECONDS = 20.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'hookline.db'}"


def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll a condition until it holds; fail with ``what`` when the deadline passes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


def json_lines(output: str) -> list[dict[str, Any]]:
    """Each line of ``output`` as the object it holds; fails on a line that is not one."""
    lines = []
    for line in output.splitlines():
        parsed = json.loads(line)
        assert isinstance(parsed, dict), line
        lines.append(parsed)
    return lines


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)
    """When it arrived (``time.monotonic``)."""


@dataclass
class Receiver:
    """Records every request; per-path behaviour is set by the test."""

    port: int = 0
    requests: list[Received] = field(default_factory=list)
    status_for: dict[str, Callable[[Received], int]] = field(default_factory=dict)
    hold: threading.Event = field(default_factory=threading.Event)
    hold_after: int | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def received(self, path_prefix: str = "/") -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    async def _handle(self, request: web.Request) -> web.Response:
        item = Received(request.path, dict(request.headers), await request.read())
        with self._lock:
            self.requests.append(item)
            count = len(self.requests)
        if self.hold_after is not None and count > self.hold_after and not self.hold.is_set():
            await asyncio.get_running_loop().run_in_executor(None, self.hold.wait, 30)
        for prefix, rule in self.status_for.items():
            if request.path.startswith(prefix):
                return web.Response(status=rule(item), text="handled")
        return web.Response(status=200, text="ok")

    def start(self) -> Receiver:
        ready = threading.Event()

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = runner.addresses[0][1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        self.hold.set()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)


@dataclass
class HooklineProcess:
    """``python -m hookline serve`` (or ``worker``) on a given database and port."""

    database_url: str
    port: int
    env: dict[str, str]
    log_dir: Path
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    ca_file: Path | None = None
    """With ``--tls-cert``: the CA file that verifies the server's certificate; the URL is
    then https and the readiness check verifies the certificate against it."""
    launcher: tuple[str, ...] = ("-m", "hookline")
    """How the interpreter starts hookline: ``("-c", code)`` runs code first (code that sets
    up logging, then calls ``hookline.cli.main(sys.argv[1:])``)."""

    @property
    def url(self) -> str:
        scheme = "http" if self.ca_file is None else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self, *args: str) -> HooklineProcess:
        """Start ``hookline serve`` and wait until it answers."""
        self._spawn("serve", *args)
        wait_until(self._ready, START_TIMEOUT_SECONDS, f"hookline on port {self.port}")
        return self

    def start_worker(self, *args: str) -> HooklineProcess:
        """Start ``hookline worker`` (it has no HTTP port to wait on)."""
        self._spawn("worker", *args)
        return self

    def run_command(self, command: str, *args: str) -> str:
        """Run a one-shot command (``migrate``, ``token``) to completion; return its output."""
        self._spawn(command, *args)
        assert self.process is not None
        code = self.process.wait(60)
        assert code == 0, self.output()
        return self.output()

    def run_refused(self, command: str, *args: str) -> str:
        """Run a command that must stop with an error; return its output."""
        self._spawn(command, *args)
        assert self.process is not None
        code = self.process.wait(60)
        assert code != 0, self.output()
        return self.output()

    def _spawn(self, command: str, *args: str) -> None:
        env = {
            **os.environ,
            "HOOKLINE_DATABASE_URL": self.database_url,
            "HOOKLINE_PORT": str(self.port),
            "HOOKLINE_ADMIN_TOKEN": ADMIN_TOKEN,
            "HOOKLINE_ENCRYPTION_KEYS": ENCRYPTION_KEYS,
            **self.env,
        }
        self.log_path = self.log_dir / f"hookline.{command}.{time.monotonic_ns()}.log"
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, *self.launcher, command, *args],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"hookline exited early:\n{self.output()}")
        try:
            verify: ssl.SSLContext | bool = True
            if self.ca_file is not None:
                verify = ssl.create_default_context(cafile=str(self.ca_file))
            ping = httpx.get(f"{self.url}/health/ping", timeout=0.5, verify=verify)
            return ping.status_code == 200
        except httpx.HTTPError:
            return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> int:
        """SIGTERM and the exit code; a process still running after 30 s is killed, so a
        failing test leaves no server behind, and the test fails."""
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"hookline ignored SIGTERM for 30 s:\n{self.output()}") from None
