"""Periodic housekeeping: expire idempotency keys, payloads past retention, old tokens."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime, timedelta

from hookline.domain.errors import Unavailable
from hookline.storage.base import Store

log = logging.getLogger("hookline.maintenance")

INTERVAL_SECONDS = 60.0
IDEMPOTENCY_TTL = timedelta(hours=24)


async def run_maintenance(store: Store, stop: asyncio.Event) -> None:
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            await store.purge_expired(now, now - IDEMPOTENCY_TTL)
        except Unavailable as exc:
            log.warning("maintenance skipped: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=INTERVAL_SECONDS)
