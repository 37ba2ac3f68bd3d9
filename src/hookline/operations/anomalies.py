"""Anomaly detection: every minute, judge each endpoint's and application's last minutes of
traffic against its baseline (``domain/anomaly.py``) and keep the store's open anomalies in
step, telling the instrumentation of each one opened or ended (operational webhooks
``hookline.anomaly.*``, log lines, metrics).

Each process that runs a worker runs a detector when ``HOOKLINE_ANOMALY_DETECTION`` is on,
but only the one holding the job's lease in the store (``LEASE``, renewed each pass) does
passes, so a deployment judges its traffic once a minute however many workers it has; when
that process stops, another takes the lease over within ``LEASE_PASSES`` intervals. Should
two ever pass at once (a lease that ran out mid-pass), the store still keeps one open
anomaly per subject and kind, and only the writer that opened (or ended) one reports it.

A pass reads the window (``WINDOW_MINUTES`` minute rows per endpoint, added up by the
database), the enabled endpoints and the open anomalies; the hour rows the baselines come
from change once an hour, so the baselines are computed once an hour and kept. Endpoints
are read and judged ``BATCH_ENDPOINTS`` at a time, yielding between batches, so a pass over
10,000 endpoints never holds the event loop (or SQLite's connection) for long
(``docs/performance-decisions.md``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta

from hookline.domain import anomaly as rules
from hookline.domain import ids
from hookline.domain.anomaly import Anomaly, Baseline, Judgement
from hookline.domain.errors import Unavailable
from hookline.domain.models import Page
from hookline.domain.rollups import HOUR_SECONDS, MINUTE_SECONDS
from hookline.instrumentation import AnomaliesEvaluated, AnomalyDetected, AnomalyResolved
from hookline.operations import applications
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import ListQuery

log = logging.getLogger("hookline.anomalies")

DEFAULT_INTERVAL_SECONDS = 60.0
"""``HOOKLINE_ANOMALY_INTERVAL``'s default: the window moves by whole minutes."""


LEASE = "anomaly-detection"
LEASE_PASSES = 3
"""A lease lasts this many intervals: a holder that misses a pass or two keeps it."""
BATCH_ENDPOINTS = 200
"""Endpoints read and judged at a time (with their whole applications); the event loop and,
on SQLite, the connection's writes run between two batches."""


class AnomalyDetector:
    """One process's detector; ``run`` evaluates every ``interval`` seconds."""

    def __init__(self, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self.holder = ids.new_id(ids.WORKER)
        """This detector's name in the lease."""
        self._hour: datetime | None = None
        self._baselines: dict[str, Baseline] = {}
        """By subject key, for the hour ``_hour``: hour rows change once an hour."""

    async def evaluate(self, ops: Operations) -> Judgement | None:
        """One pass at ``ops.clock()``: judge, write, and tell; None, and nothing read, when
        another process holds the lease."""
        now = ops.clock()
        store = ops.store
        lease_until = now + timedelta(seconds=LEASE_PASSES * self.interval)
        if not await store.take_lease(LEASE, self.holder, now, lease_until):
            self._hour = None  # another process judges: our baselines will be stale
            return None
        hour = rules.hour_start(now)
        if hour != self._hour:
            self._hour, self._baselines = hour, {}
        start, end = rules.window_span(now)
        found = rules.Findings()
        for batch in rules.batches(await store.anomaly_subjects(), BATCH_ENDPOINTS):
            subjects = [*batch, *rules.applications(batch)]
            endpoint_ids = [subject.key for subject in batch]
            if any(subject.key not in self._baselines for subject in subjects):
                await self._learn(ops, now, subjects, endpoint_ids)
            totals = await store.rollup_totals(MINUTE_SECONDS, start, end, endpoint_ids)
            windows = dict(totals)
            for subject in batch:
                counts = totals.get(subject.key)
                if counts is not None:
                    held = windows.get(subject.app_id)
                    windows[subject.app_id] = counts if held is None else held + counts
            found.add(subjects, windows, self._baselines)
            await asyncio.sleep(0)
        held_open = await store.open_anomalies()
        judgement = found.reconcile(held_open, now)
        await store.see_anomalies([(a.id, f.observed) for a, f in judgement.seen], now)
        by_kind = dict.fromkeys(rules.KINDS, 0)
        for anomaly in held_open:
            by_kind[anomaly.kind] += 1
        for anomaly in judgement.resolved:
            by_kind[anomaly.kind] -= 1
            if await store.resolve_anomaly(anomaly.id, now):
                ops.instrumentation.emit(AnomalyResolved(anomaly))
        for subject, finding in judgement.opened:
            opened = Anomaly(
                id=ids.new_id(ids.ANOMALY),
                kind=finding.kind,
                app_id=subject.app_id,
                endpoint_id=subject.endpoint_id,
                detected_at=now,
                last_seen_at=now,
                resolved_at=None,
                observed=finding.observed,
                expected=finding.expected,
                basis=finding.basis,
            )
            by_kind[finding.kind] += 1
            if await store.open_anomaly(opened):
                ops.instrumentation.emit(AnomalyDetected(opened))
        ops.instrumentation.emit(AnomaliesEvaluated(by_kind))
        return judgement

    async def _learn(
        self,
        ops: Operations,
        now: datetime,
        subjects: list[rules.Subject],
        endpoint_ids: list[str],
    ) -> None:
        """The baselines of one batch's subjects, from their hour rows. A subject that
        appears within the hour (a new endpoint) gets one from the rows there are: too few
        hours of history, so it is not judged yet."""
        points = await ops.store.rollup_points(
            HOUR_SECONDS, rules.baseline_hours(now), endpoint_ids
        )
        hours = rules.by_subject(points)
        for subject in subjects:
            self._baselines[subject.key] = rules.baseline(subject, hours.get(subject.key, {}), now)

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Evaluate every ``interval`` seconds until ``stop``; a pass the store cannot
        serve is skipped, and one that fails otherwise is logged: detection is advisory and
        never takes the worker down."""
        while not stop.is_set():
            try:
                await self.evaluate(ops)
            except Unavailable as exc:
                log.warning("anomaly detection skipped: %s", exc)
            except Exception:
                log.exception("anomaly detection failed; trying again in %.0f s", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


async def list_anomalies(
    ops: Operations, principal: Principal, query: ListQuery, status: str | None
) -> Page[Anomaly]:
    """Every application's anomalies; admins only."""
    principal.require_admin()
    return await ops.store.list_anomalies(query, status)


async def list_for_application(
    ops: Operations, principal: Principal, app_key: str, query: ListQuery, status: str | None
) -> Page[Anomaly]:
    """One application's anomalies (its own and its endpoints'), resolved with tenant
    isolation: another application's is a 404."""
    app = await applications.resolve(ops, principal, app_key)
    return await ops.store.list_anomalies(query, status, app.id)
