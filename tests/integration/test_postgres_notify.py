"""PostgreSQL wakes workers from a trigger on ``deliveries`` whenever one becomes claimable.

Each test LISTENs as a worker does, makes one change through the store, then sends a
marker on the same channel: notifications arrive in commit order, so what came before the
marker is exactly what the change sent, with no waiting for something that may not come.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any, TypeVar

import asyncpg
import pytest

from hookline.domain.models import ClaimedDelivery, MessageStatus
from hookline.storage.postgres import PostgresStore
from hookline.storage.postgres.connector import NOTIFY_CHANNEL
from tests.conftest import POSTGRES_URL, make_app, make_endpoint, make_message, utcnow
from tests.integration.test_store_contract import RecordingHandoff, _outcome
from tests.integration.test_store_contract_tasks import LEASE, checkpoint, task_for

pytestmark = pytest.mark.skipif(
    POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)"
)

T = TypeVar("T")

_MARKER = "marker"
_SAFETY_SECONDS = 10.0
"""Only bounds a broken test: the marker always arrives once the change has committed."""


class Listener:
    """A LISTEN connection on the channel workers wake on."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self._heard: asyncio.Queue[str] = asyncio.Queue()

    async def start(self) -> None:
        await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notification)

    def _on_notification(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._heard.put_nowait(payload)

    async def after(self, change: Awaitable[T]) -> tuple[T, list[str]]:
        """What ``change`` returned, and the notifications it sent once it had committed
        (none that changes before it sent)."""
        await self._until_marker()
        result = await change
        return result, await self._until_marker()

    async def _until_marker(self) -> list[str]:
        await self._conn.execute("SELECT pg_notify($1, $2)", NOTIFY_CHANNEL, _MARKER)
        heard: list[str] = []
        while (payload := await asyncio.wait_for(self._heard.get(), _SAFETY_SECONDS)) != _MARKER:
            heard.append(payload)
        return heard


@pytest.fixture
async def store(postgres_url: str) -> AsyncIterator[PostgresStore]:
    """A migrated PostgreSQL store of its own."""
    backend = PostgresStore(postgres_url, pool_size=2)
    await backend.open()
    yield backend
    await backend.close()


@pytest.fixture
async def listener(postgres_url: str) -> AsyncIterator[Listener]:
    """A worker's LISTEN connection to the same database."""
    conn = await asyncpg.connect(postgres_url)
    found = Listener(conn)
    await found.start()
    yield found
    await conn.close()


async def _claim_one(store: PostgresStore) -> ClaimedDelivery:
    """Publish one message to one endpoint and lease its delivery."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app)], utcnow())
    now = utcnow()
    (claimed,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    return claimed


async def test_a_publish_leaving_deliveries_pending_wakes_workers_once(
    store: PostgresStore, listener: Listener
) -> None:
    """A publish of 500 messages to two endpoints, 1,000 pending deliveries, sends one
    notification."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.create_endpoint(make_endpoint(app))
    messages = [make_message(app) for _ in range(500)]
    assert (await listener.after(store.publish(messages, utcnow())))[1] == [""]


async def test_a_publish_handed_wholly_to_the_local_worker_wakes_no_one(
    store: PostgresStore, listener: Listener
) -> None:
    """Deliveries written already leased to the publishing process's worker are nobody
    else's to claim: no notification."""
    store.attach_handoff(RecordingHandoff(slots=10))
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    assert (await listener.after(store.publish([make_message(app)], utcnow())))[1] == []


async def test_a_claim_and_a_success_wake_no_one(store: PostgresStore, listener: Listener) -> None:
    """Leasing a delivery and recording its success leave nothing claimable: no
    notification."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app)], utcnow())
    now = utcnow()
    claimed, heard = await listener.after(
        store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    )
    assert len(claimed) == 1 and heard == []
    success = _outcome(claimed[0], MessageStatus.SUCCESS, 200, None)
    assert (await listener.after(store.complete([success])))[1] == []


async def test_a_retry_scheduled_by_complete_wakes_workers(
    store: PostgresStore, listener: Listener
) -> None:
    """An attempt that failed and will be retried sets its delivery pending again."""
    claimed = await _claim_one(store)
    retry = _outcome(claimed, MessageStatus.PENDING, 500, 0)
    assert (await listener.after(store.complete([retry])))[1] == [""]


async def test_resend_and_a_recover_batch_wake_workers(
    store: PostgresStore, listener: Listener
) -> None:
    """A resend, and a background task's batch that re-queues a failure, set deliveries
    pending again."""
    claimed = await _claim_one(store)
    app_id, ep_id, msg_id = claimed.endpoint.app_id, claimed.endpoint.id, claimed.message.id
    await store.complete([_outcome(claimed, MessageStatus.SUCCESS, 200, None)])
    assert (await listener.after(store.resend(app_id, msg_id, ep_id, utcnow())))[1] == [""]
    now = utcnow()
    (again,) = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
    await store.complete([_outcome(again, MessageStatus.FAIL, 500, None)])
    task = task_for(claimed.endpoint)
    await store.create_task(task)
    leased = await store.lease_task(utcnow(), utcnow() + LEASE, "runner")
    assert leased is not None
    delivery = await store.get_delivery(msg_id, ep_id)
    assert delivery is not None
    batch = checkpoint(leased, "runner", msg_id, [delivery.id], finished=True)
    assert (await listener.after(store.checkpoint_task(batch)))[1] == [""]
