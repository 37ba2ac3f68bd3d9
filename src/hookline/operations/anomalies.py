"""Anomaly detection: every minute, judge each endpoint's and application's last minutes of
traffic against its baseline (``domain/anomaly.py``) and keep the store's open anomalies in
step, telling the instrumentation of each one opened or ended (operational webhooks
``hookline.anomaly.*``, log lines, metrics).

Each process that runs a worker runs a detector when ``HOOKLINE_ANOMALY_DETECTION`` is on.
They read the same rollups, and the store keeps one open anomaly per subject and kind, so
only the worker whose write opened (or ended) an anomaly reports it. A pass reads the window
(``WINDOW_MINUTES`` minute rows per active endpoint), the enabled endpoints and the open
anomalies; the hour rows the baselines come from change once an hour, so the baselines are
computed once an hour and kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime

from hookline.domain import anomaly as rules
from hookline.domain import ids
from hookline.domain.anomaly import Anomaly, Baseline, Judgement
from hookline.domain.errors import Unavailable
from hookline.domain.models import Page
from hookline.domain.rollups import HOUR_SECONDS, MINUTE_SECONDS
from hookline.instrumentation import AnomaliesEvaluated, AnomalyDetected, AnomalyResolved
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import ListQuery

log = logging.getLogger("hookline.anomalies")

DEFAULT_INTERVAL_SECONDS = 60.0
"""``HOOKLINE_ANOMALY_INTERVAL``'s default: the window moves by whole minutes."""


@dataclass(frozen=True, slots=True)
class _Baselines:
    hour: datetime
    by_key: dict[str, Baseline]


class AnomalyDetector:
    """One process's detector; ``run`` evaluates every ``interval`` seconds."""

    def __init__(self, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._baselines: _Baselines | None = None

    async def evaluate(self, ops: Operations) -> Judgement:
        """One pass at ``ops.clock()``: judge, write, and tell."""
        now = ops.clock()
        store = ops.store
        endpoints = await store.anomaly_subjects()
        subjects = [*endpoints, *rules.applications(endpoints)]
        usual = await self._baselines_at(ops, now, subjects)
        window = rules.by_subject(
            await store.rollup_points(MINUTE_SECONDS, rules.window_minutes(now))
        )
        windows = {key: rules.total(counts.values()) for key, counts in window.items()}
        held = await store.open_anomalies()
        judgement = rules.evaluate(subjects, windows, usual, held, now)
        await store.see_anomalies([(a.id, f.observed) for a, f in judgement.seen], now)
        by_kind = dict.fromkeys(rules.KINDS, 0)
        for anomaly in held:
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

    async def _baselines_at(
        self, ops: Operations, now: datetime, subjects: list[rules.Subject]
    ) -> dict[str, Baseline]:
        hour = rules.hour_start(now)
        kept = self._baselines
        if kept is None or kept.hour != hour:
            points = await ops.store.rollup_points(HOUR_SECONDS, rules.baseline_hours(now))
            hours = rules.by_subject(points)
            by_key = {s.key: rules.baseline(s, hours.get(s.key, {}), now) for s in subjects}
            kept = self._baselines = _Baselines(hour, by_key)
        # A subject that appeared within the hour has no hour of history: it is not judged
        # until the next hour's baselines.
        return kept.by_key

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
    """Anomalies, newest first unless asked otherwise; admins only, as they span every
    application."""
    principal.require_admin()
    return await ops.store.list_anomalies(query, status)
