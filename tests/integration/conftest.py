"""An in-process API on a real SQLite file, driven through httpx's ASGI transport, and the
operations over each backend's store."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.domain.failure_groups import SETTLE, FailureGroup, GroupFilter
from hookline.domain.models import Attempt
from hookline.instrumentation import (
    EndpointEnabled,
    Event,
    Instrumentation,
    MessageAccepted,
    MetricsHook,
    RequestServed,
)
from hookline.operations.context import Operations
from hookline.operations.failure_groups import FailureGrouper
from hookline.server import ensure_admin_token
from hookline.storage.base import ListQuery, Store
from hookline.storage.sqlite import SqliteStore
from tests.conftest import failed_outcome, utcnow

ADMIN_TOKEN = "hl_admin_test-token-for-the-integration-suite"


@dataclass
class Heard:
    """A hook that keeps every event the API and its operations emit."""

    events: frozenset[type[Event]] = frozenset({RequestServed, MessageAccepted, EndpointEnabled})
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)


@dataclass
class Api:
    client: httpx.AsyncClient
    store: SqliteStore
    published: list[int]
    heard: Heard

    def as_token(self, token: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=self.client._transport,
            base_url="http://hookline",
            headers={"authorization": f"Bearer {token}"},
        )


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    """The real app on a fresh SQLite file, with an admin token and a small payload limit;
    failed authentications are not limited, because route tests fail many on purpose
    (tests/integration/test_api_limits.py tests the limit)."""
    settings = load_settings(
        {"admin_token": ADMIN_TOKEN, "max_payload_bytes": "4096", "api_auth_failure_rate": "0"},
        environ={},
    )
    store = SqliteStore(str(tmp_path / "api.db"))
    await store.open()
    await ensure_admin_token(store, settings)
    published: list[int] = []
    heard = Heard()
    (tmp_path / "metrics").mkdir()
    metrics = MetricsHook(str(tmp_path / "metrics"), "test")
    instrumentation = Instrumentation([heard, metrics])
    ops = Operations(
        store,
        base_url=settings.base_url,
        work_queued=lambda: published.append(1),
        instrumentation=instrumentation,
    )
    services = Services(ops=ops, settings=settings, metrics=metrics)
    transport = httpx.ASGITransport(app=create_app(services, instrumentation))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://hookline",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as client:
        yield Api(client, store, published, heard)
    await store.close()


@dataclass
class Ops:
    """The operations over a test store, counting how often they woke the worker."""

    ops: Operations
    store: Store
    wakes: list[int]


@pytest.fixture
def ops(store: Store) -> Ops:
    """Operations over a fresh store of each backend (SQLite, and PostgreSQL when set)."""
    wakes: list[int] = []
    operations = Operations(
        store, base_url="https://hooks.example", work_queued=lambda: wakes.append(1)
    )
    return Ops(operations, store, wakes)


async def fail_next_delivery(store: Store) -> Attempt:
    """Claim the oldest due delivery and record its attempt as failed for good (no retry)."""
    now = utcnow()
    (claimed,) = await store.claim_due(1, now, now + timedelta(seconds=30), "w1")
    outcome = failed_outcome(claimed)
    await store.complete([outcome])
    return outcome.attempt


_GROUPER = FailureGrouper()


async def group_failures(store: Store) -> list[FailureGroup]:
    """Run one failure-grouping pass that reads every attempt recorded so far (a pass reads
    attempts ``SETTLE`` old, so its clock runs ahead), as the one grouper that holds the
    job's lease in tests; then every group. The pass ends one id tick (4 ms) from now, and
    this returns once the real clock passed that, so an attempt recorded later falls in the
    next pass, never behind the cursor."""
    end = utcnow() + timedelta(milliseconds=4)
    ops = Operations(store, clock=lambda: end + SETTLE)
    await _GROUPER.scan(ops)
    await asyncio.sleep(max(0.0, (end - utcnow()).total_seconds()) + 0.001)
    page = await store.list_failure_groups(ListQuery(limit=250), GroupFilter())
    return page.data


@pytest.fixture
async def console(api: Api) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    """A browser signed in to the console (no bearer header, cookies kept, redirects not
    followed) and the CSRF token its pages carry."""
    async with httpx.AsyncClient(
        transport=api.client._transport, base_url="http://hookline"
    ) as web:
        r = await web.post("/dashboard/sign-in", data={"token": ADMIN_TOKEN})
        assert r.status_code == 303, r.text
        page = await web.get("/dashboard")
        assert page.status_code == 200, page.text
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        assert found is not None
        yield web, found.group(1)
