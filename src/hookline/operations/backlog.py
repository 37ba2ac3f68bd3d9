"""The backlog monitor: the queue's depth, its oldest due delivery and its drain forecast.

Counting the due deliveries reads one index entry per due row, which is too much to do
whenever a scraper or an operator asks (issue 15: no table scans at scrape time), and not
something in-memory counters can know across processes. So each ``serve`` and ``worker``
process samples the backlog in the background every ``HOOKLINE_BACKLOG_SAMPLE_INTERVAL``
seconds; the samples feed the metrics' gauges (``BacklogSampled``), the drain forecast
(``domain/backlog.py``) and ``GET /api/v1/backlog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta
from typing import TYPE_CHECKING

from hookline.domain.backlog import BacklogState, drain_seconds
from hookline.domain.errors import Unavailable
from hookline.instrumentation import BacklogSampled
from hookline.operations.principal import Principal

if TYPE_CHECKING:
    from hookline.operations.context import Operations

log = logging.getLogger("hookline.backlog")

DEFAULT_INTERVAL_SECONDS = 15.0
"""``HOOKLINE_BACKLOG_SAMPLE_INTERVAL``'s default: a usual Prometheus scrape interval."""
HISTORY_SECONDS = 600.0
"""Samples kept for the forecast: more than its window (``FORECAST_WINDOW_SECONDS``)."""


class BacklogMonitor:
    """This process's samples of the backlog, the newest first in ``latest``."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.latest: BacklogState | None = None
        self._history: deque[tuple[float, int]] = deque()

    async def sample(self, ops: Operations) -> BacklogState:
        """Read the backlog now, add it to the history and tell the instrumentation."""
        now = ops.clock()
        found = await ops.store.backlog_sample(now, now - ops.stall_timeout)
        at = now.timestamp()
        history = self._history
        history.append((at, found.due))
        while history[0][0] < at - HISTORY_SECONDS:
            history.popleft()
        state = BacklogState(
            sampled_at=now,
            due=found.due,
            oldest_due_at=found.oldest_due_at,
            live_workers=found.live_workers,
            disabled_endpoints=found.disabled_endpoints,
            open_breakers=found.open_breakers,
            drain_seconds=drain_seconds(history),
        )
        self.latest = state
        ops.instrumentation.emit(BacklogSampled(state))
        return state

    def fresh(self, ops: Operations) -> BacklogState | None:
        """The latest sample if the background loop took it within two intervals."""
        latest = self.latest
        if latest is None:
            return None
        if ops.clock() - latest.sampled_at > timedelta(seconds=2 * self.interval):
            return None
        return latest

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Sample every ``interval`` seconds until ``stop``; a sample the store cannot give
        is skipped (the gauges keep the last one, and its timestamp says how old it is)."""
        while not stop.is_set():
            try:
                await self.sample(ops)
            except Unavailable as exc:
                log.warning("backlog sample skipped: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


async def backlog(ops: Operations, principal: Principal) -> BacklogState:
    """The backlog and its forecast (admins only: it spans every application). The
    background sample when it is fresh, else one taken now, whose forecast may be None
    until the history is long enough."""
    principal.require_admin()
    monitor = ops.backlog
    return monitor.fresh(ops) or await monitor.sample(ops)
