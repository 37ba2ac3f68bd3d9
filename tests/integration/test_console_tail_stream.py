"""The live tail's event stream driven as ASGI by hand (httpx's ASGI transport waits for a
response to end): an attempt recorded by the store, as another process would, arrives as an
event; the stream ends on the stop signal, on the client's disconnect, and when its session
is revoked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from hookline.api.app import HooklineApp, Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.operations import console_sessions, tokens
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM
from hookline.operations.tokens import Authenticator
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore
from hookline.web.console import COOKIE, tail
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow
from tests.integration.conftest import ADMIN_TOKEN

ARRIVES_WITHIN_SECONDS = 1.0
"""The issue's bound: an attempt shows in the tail within 1 s of being recorded."""


@dataclass
class Served:
    app: HooklineApp
    store: SqliteStore
    ops: Operations
    stopping: asyncio.Event
    session: str


@dataclass
class Stream:
    """One open request: what the app sent, and the switch that disconnects the client."""

    task: asyncio.Task[None]
    sent: asyncio.Queue[MutableMapping[str, Any]] = field(default_factory=asyncio.Queue)
    gone: asyncio.Event = field(default_factory=asyncio.Event)

    async def body(self, timeout: float = 5.0) -> str:
        """The next chunk of the body (after the response's start)."""
        while True:
            message = await asyncio.wait_for(self.sent.get(), timeout)
            if message["type"] == "http.response.body":
                return bytes(message.get("body", b"")).decode()

    async def next_event(self, name: str, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            chunk = await self.body(max(deadline - time.monotonic(), 0.01))
            if f"event: {name}" in chunk:
                return chunk


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    settings = load_settings({"admin_token": ADMIN_TOKEN}, environ={})
    store = SqliteStore(str(tmp_path / "tail.db"))
    await store.open()
    await ensure_admin_token(store, settings)
    ops = Operations(store)
    stopping = asyncio.Event()
    app = create_app(Services(ops=ops, settings=settings, stopping=stopping))
    issued = await console_sessions.sign_in(
        ops, Authenticator(ops), ADMIN_TOKEN, datetime.now(UTC), None
    )
    yield Served(app, store, ops, stopping, issued.token)
    await store.close()


async def _open(served: Served, query: bytes = b"") -> Stream:
    stream: Stream
    requested = False

    async def receive() -> MutableMapping[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await stream.gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        await stream.sent.put(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/dashboard/tail/stream",
        "raw_path": b"/dashboard/tail/stream",
        "query_string": query,
        "root_path": "",
        "headers": [
            (b"host", b"hookline"),
            (b"accept", b"text/event-stream"),
            (b"cookie", f"{COOKIE}={served.session}".encode()),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("hookline", 80),
    }
    stream = Stream(asyncio.create_task(served.app(scope, receive, send)))
    start = await asyncio.wait_for(stream.sent.get(), 5)
    assert start["type"] == "http.response.start" and start["status"] == 200, start
    assert "tail started" in await stream.body()
    return stream


async def _record_attempt(store: SqliteStore, code: int = 200) -> str:
    """An attempt recorded straight in the store, as a worker in another process would."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    await store.publish([make_message(app)], now)
    (claimed,) = await store.claim_due(1, now, now + timedelta(seconds=30), "w-elsewhere")
    outcome = recorded_outcome(claimed, code, utcnow())
    await store.complete([outcome])
    return outcome.attempt.id


async def test_an_attempt_recorded_by_another_process_arrives_within_a_second(
    served: Served,
) -> None:
    """The stream reads the store, not this process's memory: an attempt written straight
    to it is sent as an ``attempt`` event holding its row within one second."""
    stream = await _open(served)
    attempt_id = await _record_attempt(served.store)
    recorded = time.monotonic()
    event = await stream.next_event("attempt", timeout=ARRIVES_WITHIN_SECONDS)
    assert time.monotonic() - recorded < ARRIVES_WITHIN_SECONDS
    assert f'data-attempt="{attempt_id}"' in event
    stream.gone.set()
    await asyncio.wait_for(stream.task, 5)


async def test_the_outcome_filter_leaves_other_attempts_out(served: Served) -> None:
    """A stream of failures skips a success and sends the 503 that follows it."""
    stream = await _open(served, b"outcome=failure")
    await _record_attempt(served.store, 200)
    failed = await _record_attempt(served.store, 503)
    event = await stream.next_event("attempt")
    assert f'data-attempt="{failed}"' in event
    stream.gone.set()
    await asyncio.wait_for(stream.task, 5)


async def test_the_stop_signal_ends_an_open_stream_promptly(served: Served) -> None:
    """When the process begins to stop, the stream finishes its body at once, so uvicorn
    does not wait for the browser."""
    stream = await _open(served)
    served.stopping.set()
    while True:
        message = await asyncio.wait_for(stream.sent.get(), 2)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            break
    await asyncio.wait_for(stream.task, 2)


async def test_a_client_disconnect_ends_the_stream_and_leaves_no_task(served: Served) -> None:
    """Starlette cancels the generator when the client goes away; the request's task ends."""
    stream = await _open(served)
    stream.gone.set()
    await asyncio.wait_for(stream.task, 2)
    assert stream.task.done()


async def test_a_revoked_session_ends_the_stream_at_its_next_check(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream checks its session again every ``RECHECK_SECONDS``: once revoked, it
    sends ``signed-out`` and ends."""
    monkeypatch.setattr(tail, "RECHECK_SECONDS", 0.0)
    stream = await _open(served)
    listed = await tokens.list_tokens(served.ops, SYSTEM)
    (session,) = [t for t in listed if t.name == console_sessions.SESSION_NAME]
    await tokens.revoke_token(served.ops, SYSTEM, session.id)
    await stream.next_event("signed-out")
    while True:
        message = await asyncio.wait_for(stream.sent.get(), 2)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            break
    stream.gone.set()
    await asyncio.wait_for(stream.task, 2)
