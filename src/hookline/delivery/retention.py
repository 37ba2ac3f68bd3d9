"""Retention: remove messages, deliveries and attempts past the horizon, in small batches,
the background tasks that ended before it, the audit log's entries recorded before it, the
attempt rollups that started before it (minute rollups sooner: ``minute_cutoff``), and the
anomalies and failure groups resolved before it.

Every process that runs a worker runs ``run_pruning`` beside maintenance; ``hookline prune``
runs ``prune`` once, to completion. A pass walks the messages older than the horizon by
primary key, ``BATCH_MESSAGES`` at a time, each batch one short transaction
(``Store.prune_batch``) with a rest after it, so a publish waits for at most one batch; on
SQLite batches and group commits take turns on the connection's thread, so pruning keeps
pace with ingest without taking more than its turns. A message with a delivery still
pending or sending is kept whole, however old (docs/delivery.md#retention).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookline.domain.retention import cutoff
from hookline.domain.rollups import HOUR_SECONDS, MINUTE_SECONDS, minute_cutoff
from hookline.storage.base import PruneBatch, Store

log = logging.getLogger("hookline.retention")

BATCH_MESSAGES = 250
"""Messages scanned per transaction; with their deliveries and attempts, under a thousand
rows, a few milliseconds of the write lock. On SQLite the batches queue on the connection's
one thread with the group commits and take turns with them."""
PAUSE_SECONDS = 0.01
"""The rest between two batches: a publish waiting for the write lock gets it first."""
RECLAIM_PAGES = 2000
"""Free SQLite pages (4 KiB each) given back after a batch, at most: 8 MiB per transaction."""
BATCH_AUDIT = 1000
"""Audit entries removed per transaction: small rows with no dependants, so a batch is as
short as a message batch."""
BATCH_ROLLUPS = 1000
"""Rollup rows removed per transaction: small rows with no dependants, as audit entries."""
COUNT_ALL = 2**62
"""The limit a dry run counts audit entries under: all of them, in one read."""


@dataclass
class PruneReport:
    """What one pass removed (or, dry, would remove), and what it had to keep."""

    messages: int = 0
    deliveries: int = 0
    attempts: int = 0
    tasks: int = 0
    """Background tasks that had ended before the horizon."""
    audit: int = 0
    """Audit-log entries recorded before the horizon."""
    rollups: int = 0
    """Attempt rollup rows (``domain/rollups.py``) that started before their horizon."""
    anomalies: int = 0
    """Anomalies (``domain/anomaly.py``) resolved before the horizon."""
    failure_groups: int = 0
    """Failure groups (``domain/failure_groups.py``) resolved before the horizon."""
    held: int = 0
    """Messages past the horizon kept because a delivery of theirs can still be attempted."""
    reclaimed_pages: int = 0

    def add(self, batch: PruneBatch) -> None:
        self.messages += batch.messages
        self.deliveries += batch.deliveries
        self.attempts += batch.attempts
        self.held += batch.held


async def prune(
    store: Store,
    before: datetime,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
    batch_messages: int = BATCH_MESSAGES,
    minutes_before: datetime | None = None,
) -> PruneReport:
    """One pass over the messages created before ``before``; ``stop`` ends it between
    batches (the next pass starts over, and finds what this one removed gone). Minute
    rollups go from ``minutes_before`` (``before`` if not given), hour rollups from
    ``before``."""
    report = PruneReport(tasks=await store.prune_tasks(before, dry_run=dry_run))
    report.audit = await prune_audit(store, before, dry_run=dry_run, stop=stop)
    horizons = ((MINUTE_SECONDS, minutes_before or before), (HOUR_SECONDS, before))
    for period, horizon in horizons:
        report.rollups += await prune_rollups(store, period, horizon, dry_run=dry_run, stop=stop)
    report.anomalies = await prune_anomalies(store, before, dry_run=dry_run, stop=stop)
    report.failure_groups = await prune_failure_groups(store, before, dry_run=dry_run, stop=stop)
    after = ""  # sorts below every id
    while True:
        batch = await store.prune_batch(before, after, batch_messages, dry_run=dry_run)
        report.add(batch)
        if batch.messages and not dry_run:
            report.reclaimed_pages += await store.reclaim_space(RECLAIM_PAGES)
        if batch.scanned_to is None or (stop is not None and stop.is_set()):
            return report
        after = batch.scanned_to
        await asyncio.sleep(PAUSE_SECONDS)


Removal = Callable[[int, bool], Awaitable[int]]
"""``(limit, dry_run)``: one store call that removes (or, dry, counts) at most ``limit``
rows of one kind past its horizon, and says how many."""


async def prune_rows(
    remove: Removal, batch: int, *, dry_run: bool = False, stop: asyncio.Event | None = None
) -> int:
    """Remove rows of one kind ``batch`` per transaction with a rest between (``drain``);
    how many (dry: how many would go, counted in one read)."""
    if dry_run:
        return await remove(COUNT_ALL, True)
    return await drain(lambda limit: remove(limit, False), batch, stop)


async def prune_audit(
    store: Store,
    before: datetime,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
    batch: int = BATCH_AUDIT,
) -> int:
    """The audit entries recorded before ``before`` (``prune_rows``)."""

    async def remove(limit: int, dry: bool) -> int:
        return await store.prune_audit(before, limit, dry_run=dry)

    return await prune_rows(remove, batch, dry_run=dry_run, stop=stop)


async def prune_anomalies(
    store: Store, before: datetime, *, dry_run: bool = False, stop: asyncio.Event | None = None
) -> int:
    """The anomalies resolved before ``before``; an open one stays, however old."""

    async def remove(limit: int, dry: bool) -> int:
        return await store.prune_anomalies(before, limit, dry_run=dry)

    return await prune_rows(remove, BATCH_AUDIT, dry_run=dry_run, stop=stop)


async def prune_failure_groups(
    store: Store, before: datetime, *, dry_run: bool = False, stop: asyncio.Event | None = None
) -> int:
    """The failure groups resolved before ``before``; an unresolved one stays, however old."""

    async def remove(limit: int, dry: bool) -> int:
        return await store.prune_failure_groups(before, limit, dry_run=dry)

    return await prune_rows(remove, BATCH_AUDIT, dry_run=dry_run, stop=stop)


async def prune_rollups(
    store: Store,
    period_seconds: int,
    before: datetime,
    *,
    dry_run: bool = False,
    stop: asyncio.Event | None = None,
) -> int:
    """The rollups of one period that started before ``before``."""

    async def remove(limit: int, dry: bool) -> int:
        return await store.prune_rollups(period_seconds, before, limit, dry_run=dry)

    return await prune_rows(remove, BATCH_ROLLUPS, dry_run=dry_run, stop=stop)


async def drain(
    step: Callable[[int], Awaitable[int]], batch: int, stop: asyncio.Event | None = None
) -> int:
    """Run ``step(batch)``, one short transaction that handles at most ``batch`` rows and
    says how many, until one comes back short or ``stop`` is set, with ``PAUSE_SECONDS`` of
    rest between so that a publish waits for at most one; the rows handled in all."""
    handled = 0
    while True:
        done = await step(batch)
        handled += done
        if done < batch or (stop is not None and stop.is_set()):
            return handled
        await asyncio.sleep(PAUSE_SECONDS)


async def run_pruning(
    store: Store, horizon: timedelta, interval_seconds: float, stop: asyncio.Event
) -> None:
    """A pass every ``interval_seconds`` until ``stop``. A failed pass is logged and the next
    one tries again: housekeeping never takes the worker down with it."""
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            report = await prune(
                store, cutoff(now, horizon), stop=stop, minutes_before=minute_cutoff(now, horizon)
            )
        except Exception:
            log.exception("pruning pass failed; retrying in %.0f s", interval_seconds)
        else:
            _log_pass(report)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_seconds)


def _log_pass(report: PruneReport) -> None:
    if report.messages or report.tasks or report.audit or report.rollups or report.anomalies:
        log.info(
            "pruned %d messages, %d deliveries, %d attempts, %d ended background tasks, "
            "%d audit entries, %d attempt rollups and %d resolved anomalies past the retention "
            "horizon",
            report.messages,
            report.deliveries,
            report.attempts,
            report.tasks,
            report.audit,
            report.rollups,
            report.anomalies,
        )
    if report.held:
        log.warning(
            "%d messages past the retention horizon are kept because a delivery of theirs is "
            "still pending or sending (a disabled endpoint's, or one that keeps failing): "
            "enable or delete the endpoint to let them go",
            report.held,
        )
