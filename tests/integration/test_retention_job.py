"""The pruning job: a failed pass is logged and the next one runs; ``stop`` ends it. And
maintenance's payload expiry, which clears a backlog in batches."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hookline.delivery.maintenance import expire_payloads
from hookline.delivery.retention import run_pruning
from hookline.domain.errors import Unavailable
from hookline.storage.base import PruneBatch
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_message, utcnow
from tests.integration.test_worker import eventually


class FailingOnceStore(SqliteStore):
    """A store whose first pruning batch fails, as a database restart would make it."""

    failures = 0

    async def prune_batch(
        self, before: datetime, after_id: str, limit: int, dry_run: bool = False
    ) -> PruneBatch:
        if self.failures == 0:
            self.failures += 1
            raise Unavailable("database restarting")
        return await super().prune_batch(before, after_id, limit, dry_run)


async def test_a_failed_pass_is_logged_and_the_next_one_prunes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The job outlives a pass that failed, and its next pass removes what is past the
    horizon (a message with no endpoint has nothing left to deliver)."""
    store = FailingOnceStore(str(tmp_path / "job.db"))
    await store.open()
    stop = asyncio.Event()
    try:
        app = make_app()
        await store.create_application(app)
        msg = make_message(app)
        await store.publish([msg], utcnow())
        job = asyncio.create_task(run_pruning(store, timedelta(milliseconds=1), 0.05, stop))

        async def pruned() -> bool:
            return await store.get_message(app.id, msg.id) is None

        await eventually(pruned, timeout=10)
        stop.set()
        await asyncio.wait_for(job, 5)
    finally:
        stop.set()
        await store.close()
    assert store.failures == 1
    assert "pruning pass failed" in caplog.text


async def test_maintenance_clears_every_expired_payload_a_batch_at_a_time(
    tmp_path: Path,
) -> None:
    """Maintenance's payload expiry repeats full batches until one comes back short, so a
    backlog larger than a batch is cleared in one round and counted."""
    store = SqliteStore(str(tmp_path / "payloads.db"))
    await store.open()
    try:
        app = make_app()
        await store.create_application(app)
        now = utcnow()
        msgs = [replace(make_message(app), expires_at=now - timedelta(seconds=1)) for _ in range(5)]
        await store.publish(msgs, now)
        assert await expire_payloads(store, now, batch=2) == 5
        for msg in msgs:
            found = await store.get_message(app.id, msg.id)
            assert found is not None and found.payload is None
    finally:
        await store.close()
