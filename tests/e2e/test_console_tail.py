"""The console's live tail against the real process: an open event stream does not hold up
a stop, since uvicorn waits for every open response before it exits."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx

from tests.e2e.harness import ADMIN_TOKEN, HooklineProcess, free_port, sqlite_url

STOPS_WITHIN_SECONDS = 10.0
"""A stop with nothing in flight takes a second or two; an open stream must not add to it."""


def test_serve_stops_promptly_on_sigterm_while_a_live_tail_is_open(tmp_path: Path) -> None:
    """With a tail's event stream open, SIGTERM ends the stream and the process exits 0
    within seconds instead of waiting for the browser to leave."""
    server = HooklineProcess(sqlite_url(tmp_path), free_port(), {}, tmp_path).start()
    try:
        with httpx.Client(base_url=server.url, timeout=10) as web:
            signed = web.post("/dashboard/sign-in", data={"token": ADMIN_TOKEN})
            assert signed.status_code == 303, signed.text
            with web.stream("GET", "/dashboard/tail/stream") as stream:
                assert stream.status_code == 200
                assert stream.headers["content-type"].startswith("text/event-stream")
                lines = stream.iter_lines()
                assert next(lines) == "retry: 2000"
                assert server.process is not None
                asked = time.monotonic()
                server.process.send_signal(signal.SIGTERM)
                rest = list(lines)
                code = server.process.wait(STOPS_WITHIN_SECONDS * 3)
                took = time.monotonic() - asked
        assert rest[:1] == [": tail started"]
        assert code == 0, server.output()
        assert took < STOPS_WITHIN_SECONDS, f"stopped after {took:.1f} s"
    finally:
        if server.process is not None and server.process.poll() is None:
            server.kill()
