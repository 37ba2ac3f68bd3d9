"""Fairness between applications, on each store, with a real local receiver: another
application's message reaches its endpoint within a second or so while one application's
backlog over many endpoints drains, an endpoint hangs and another refuses connections."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from hookline.delivery.worker import Worker
from hookline.domain.models import Application
from hookline.storage.base import Store
from hookline.transport import AsyncioTransport, SsrfPolicy
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.e2e.harness import free_port
from tests.integration.keep_alive import KeepAliveServer, keep_alive_server
from tests.integration.test_worker import config, eventually

BURST_ENDPOINTS = 6
BURST_MESSAGES = 600
"""The burst: 3,600 deliveries, several seconds of work for this worker on this machine."""
LATENCY_BOUND_SECONDS = 1.5


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as running:
        yield running


async def _app_with(store: Store, urls: list[str]) -> Application:
    app = make_app()
    await store.create_application(app)
    for url in urls:
        await store.create_endpoint(make_endpoint(app, url))
    return app


async def test_a_burst_a_hanging_and_a_refusing_endpoint_do_not_delay_another_application(
    store: Store, server: KeepAliveServer
) -> None:
    """Application A's 3,600 queued deliveries over six endpoints, and application C's
    endpoint that hangs and one that refuses, leave application B's single message, published
    after all of them, a delivery within 1.5 s, long before A's backlog is through."""
    burst = await _app_with(store, [server.url(f"/a{n}") for n in range(BURST_ENDPOINTS)])
    troubled = await _app_with(store, [server.url("/slow"), f"http://127.0.0.1:{free_port()}/dead"])
    other = await _app_with(store, [server.url("/b")])
    await store.publish([make_message(troubled) for _ in range(200)], utcnow())
    await store.publish([make_message(burst) for _ in range(BURST_MESSAGES)], utcnow())
    transport = AsyncioTransport(SsrfPolicy(allow_private=True))
    worker = Worker(
        store,
        transport,
        config(max_in_flight=32, endpoint_max_in_flight=8, request_timeout=10.0),
    )
    running = asyncio.create_task(worker.run())
    try:
        await eventually(lambda: len(server.paths) >= 100, timeout=10)
        published = time.monotonic()
        await store.publish([make_message(other)], utcnow())
        await eventually(lambda: "/b" in server.paths, timeout=10)
        waited = time.monotonic() - published
        burst_done = sum(1 for p in server.paths if p.startswith("/a"))
    finally:
        server.release.set()
        worker.stop()
        await asyncio.wait_for(running, 30)
        await transport.close()
    assert waited < LATENCY_BOUND_SECONDS, waited
    assert burst_done < BURST_ENDPOINTS * BURST_MESSAGES // 2, burst_done
