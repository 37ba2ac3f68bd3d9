"""Periodic housekeeping: expire idempotency keys, payloads past retention, old tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from hookline.delivery.retention import drain
from hookline.domain.errors import Unavailable
from hookline.storage.base import Store

log = logging.getLogger("hookline.maintenance")

INTERVAL_SECONDS = 60.0
IDEMPOTENCY_TTL = timedelta(hours=24)
PAYLOAD_BATCH = 1000
"""Payloads cleared per transaction: each batch is a short write, so a publish waits for at
most one of them."""


async def run_maintenance(store: Store, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            await store.purge_expired(now, now - IDEMPOTENCY_TTL)
            await expire_payloads(store, now, stop)
        except Unavailable as exc:
            log.warning("maintenance skipped: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_SECONDS)


async def expire_payloads(
    store: Store, now: datetime, stop: asyncio.Event | None = None, batch: int = PAYLOAD_BATCH
) -> int:
    """Clear every payload that expired before ``now``, ``batch`` per transaction, until a
    batch comes back short or ``stop`` is set; how many."""
    return await drain(lambda limit: store.expire_payloads(now, limit), batch, stop)
