"""Faults found under load (issue 13, item 11), each pinned at the bound docs/delivery.md
states ("Faults and recovery bounds")."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from hookline.api import reservations
from hookline.delivery.worker import Worker, WorkerConfig
from hookline.domain.errors import Unavailable
from hookline.domain.models import MessageStatus
from hookline.storage import repository
from hookline.storage.base import ListQuery, MessageFilter, Store
from hookline.storage.parts import Claimer, Leased
from hookline.storage.repository import IDEMPOTENCY_LEASE_SECONDS, SqlRepository
from tests.conftest import make_app, make_endpoint, make_message, make_store, utcnow
from tests.integration.conftest import Api
from tests.integration.test_worker import FakeTransport, Running, config, eventually

UNKNOWN_CLAIM_BOUND_SECONDS = 5.0
"""docs/delivery.md: a claim of unknown outcome is put back by its process's next claim or
heartbeat once the database answers."""


@dataclass
class CommitThenFail:
    """A claimer whose claim commits but whose caller hears a dropped connection, once."""

    real: Claimer
    failures: int = 1

    async def lease(self, params: dict[str, Any]) -> Leased:
        leased = await self.real.lease(params)
        if self.failures:
            self.failures -= 1
            raise Unavailable("database unavailable: connection was closed in the middle")
        return leased


async def _all_delivered(store: Store, msg_ids: list[str], ep_id: str) -> bool:
    for msg_id in msg_ids:
        delivery = await store.get_delivery(msg_id, ep_id)
        if delivery is None or delivery.status != MessageStatus.SUCCESS:
            return False
    return True


@contextlib.asynccontextmanager
async def workers(store: Store) -> AsyncIterator[Running]:
    """Start workers on ``store`` with ``running(transport, config)``; stop them after."""
    started: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(transport: FakeTransport, cfg: WorkerConfig) -> Worker:
        worker = Worker(store, transport, cfg)
        started.append((worker, asyncio.create_task(worker.run())))
        return worker

    try:
        yield start
    finally:
        for worker, task in started:
            worker.stop()
            await asyncio.wait_for(task, 10)


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Running]:
    async with workers(store) as start:
        yield start


async def test_a_claim_of_unknown_outcome_is_delivered_within_the_bound(
    store: Store, running: Running
) -> None:
    """A claim that committed while the worker heard a dropped connection is delivered by
    the same live worker within the bound, not after its (here one-minute) lease."""
    assert isinstance(store, SqlRepository)
    store._claimer = CommitThenFail(store._claimer)
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    messages = [make_message(app) for _ in range(20)]
    await store.publish(messages, utcnow())
    started = time.monotonic()
    running(FakeTransport(), config(lease_seconds=60.0, heartbeat_interval=0.5))
    await eventually(
        lambda: _all_delivered(store, [m.id for m in messages], endpoint.id),
        timeout=UNKNOWN_CLAIM_BOUND_SECONDS,
    )
    assert time.monotonic() - started < UNKNOWN_CLAIM_BOUND_SECONDS


async def _terminate_backends(url: str, stop: asyncio.Event) -> int:
    """Cut every other connection to the test database (``pg_terminate_backend``) every
    few milliseconds until ``stop``; how many were cut."""
    admin = await asyncpg.connect(url)
    cut = 0
    try:
        while not stop.is_set():
            found = await admin.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            cut += len(found)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.03)
    finally:
        await admin.close()
    return cut


async def test_cut_connections_strand_no_delivery_under_a_live_worker(
    postgres_url: str,
) -> None:
    """With its PostgreSQL connections cut again and again while it claims and records, a
    live worker delivers every message within the bound once the cuts stop."""
    store = make_store(("postgres", postgres_url))
    await store.open()
    async with workers(store) as running:
        await _publish_through_cuts(store, postgres_url, running)
    await store.close()


async def _publish_through_cuts(store: Store, url: str, running: Running) -> None:
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(endpoint)
    running(FakeTransport(delay=0.005), config(lease_seconds=60.0, heartbeat_interval=0.5))
    stop = asyncio.Event()
    cutter = asyncio.create_task(_terminate_backends(url, stop))
    published: list[str] = []
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        batch = [make_message(app) for _ in range(5)]
        try:
            await store.publish(batch, utcnow())
        except Unavailable:
            continue
        published += [m.id for m in batch]
    stop.set()
    assert await cutter > 0
    await eventually(
        lambda: _all_delivered(store, published, endpoint.id),
        timeout=UNKNOWN_CLAIM_BOUND_SECONDS,
    )


async def _new_app(api: Api) -> str:
    r = await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _messages(api: Api, app_id: str) -> int:
    page = await api.store.list_messages(app_id, ListQuery(limit=250), MessageFilter())
    return len(page.data)


async def test_a_key_whose_owner_died_is_free_within_one_lease(api: Api) -> None:
    """A reservation its (dead) owner stopped renewing is taken over once one lease old; a
    younger one answers 409 with Retry-After, so a client that honours it gets through."""
    app_id = await _new_app(api)
    lease = timedelta(seconds=IDEMPOTENCY_LEASE_SECONDS)
    body = b'{"eventType":"a.b","payload":{}}'
    digest = hashlib.sha256(b"POST /api/v1/app/acme/msg\n" + body).hexdigest()
    now = utcnow()
    await api.store.idempotency_begin("admin", "young", digest, now - lease / 2)
    await api.store.idempotency_begin("admin", "old", digest, now - lease - timedelta(seconds=1))

    async def post(key: str) -> httpx.Response:
        headers = {"idempotency-key": key, "content-type": "application/json"}
        return await api.client.post("/api/v1/app/acme/msg", content=body, headers=headers)

    busy = await post("young")
    assert busy.status_code == 409 and busy.json()["code"] == "idempotency_in_progress"
    assert busy.headers["retry-after"] == "1"
    assert (await post("old")).status_code == 202
    assert await _messages(api, app_id) == 1


async def test_a_live_owner_keeps_its_key_past_the_lease(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request still running renews its reservation, so a retry during it gets 409 (never a
    second publish) however long past one lease the first request takes."""
    monkeypatch.setattr(repository, "IDEMPOTENCY_LEASE_SECONDS", 0.3)
    monkeypatch.setattr(reservations, "IDEMPOTENCY_RENEW_SECONDS", 0.05)
    app_id = await _new_app(api)
    gate, reached = asyncio.Event(), asyncio.Event()
    publish = api.store.publish

    async def held_publish(*args: Any, **kwargs: Any) -> list[list[str]]:
        reached.set()
        await gate.wait()
        return await publish(*args, **kwargs)

    monkeypatch.setattr(api.store, "publish", held_publish)
    body = {"eventType": "a.b", "payload": {}}
    headers = {"idempotency-key": "k"}
    first = asyncio.create_task(api.client.post("/api/v1/app/acme/msg", json=body, headers=headers))
    await asyncio.wait_for(reached.wait(), 5)
    held_until = time.monotonic() + 1.0  # more than three leases
    try:
        while time.monotonic() < held_until:
            retry = await api.client.post("/api/v1/app/acme/msg", json=body, headers=headers)
            assert retry.status_code == 409, retry.text
            await asyncio.sleep(0.1)
    finally:
        gate.set()
    assert (await first).status_code == 202
    assert await _messages(api, app_id) == 1
