"""Anomaly detection end to end over each backend's store: real attempts recorded through
``Store.complete`` (so real rollups), two detectors as two worker processes would run them,
and what they tell: one operational webhook, one log-worthy event and the metrics."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from hookline.domain import anomaly as rules
from hookline.domain.models import ClaimedDelivery
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.instrumentation import (
    AnomaliesEvaluated,
    AnomalyDetected,
    AnomalyResolved,
    Event,
    Instrumentation,
    MetricsHook,
)
from hookline.operations import operational_webhooks
from hookline.operations.anomalies import AnomalyDetector
from hookline.operations.endpoints import EndpointFields
from hookline.operations.operational_webhooks import OperationalPublisher
from hookline.operations.principal import SYSTEM
from hookline.storage.base import ListQuery, MessageFilter, Store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome
from tests.integration.conftest import Ops

HOUR = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
"""The hour judged; the history is the four before it."""
HISTORY_PER_HOUR = 30
SPIKE = 40


class Heard:
    events = frozenset({AnomalyDetected, AnomalyResolved, AnomaliesEvaluated})

    def __init__(self) -> None:
        self.seen: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def of(self, kind: type[Event]) -> list[Event]:
        return [event for event in self.seen if isinstance(event, kind)]


async def _endpoint_with_deliveries(
    store: Store, n: int, born: datetime = HOUR - timedelta(days=10)
) -> list[ClaimedDelivery]:
    """An endpoint created at ``born`` (by default well before the history), and ``n`` of
    its deliveries, claimed."""
    app = make_app()
    await store.create_application(app)
    endpoint = make_endpoint(app)
    await store.create_endpoint(dataclasses.replace(endpoint, created_at=born, updated_at=born))
    now = datetime.now(UTC)
    await store.publish([make_message(app) for _ in range(n)], now)
    return await store.claim_due(n, now, now + timedelta(minutes=5), "w1")


async def _history_then_spike(store: Store) -> str:
    """Four hours of successes, then every attempt failing from 10:15; the endpoint's id."""
    claimed = await _endpoint_with_deliveries(store, 4 * HISTORY_PER_HOUR + SPIKE)
    history, spike = claimed[: 4 * HISTORY_PER_HOUR], claimed[4 * HISTORY_PER_HOUR :]
    outcomes = [
        recorded_outcome(c, 200, HOUR - timedelta(hours=4 - i // HISTORY_PER_HOUR, minutes=-i % 60))
        for i, c in enumerate(history)
    ]
    start = HOUR + timedelta(minutes=15)
    outcomes += [
        recorded_outcome(c, 500, start + timedelta(seconds=7 * i)) for i, c in enumerate(spike)
    ]
    await store.complete(outcomes)
    return claimed[0].endpoint.id


async def test_one_of_two_workers_detects_a_failure_spike_and_another_takes_over(
    ops: Ops, tmp_path: Path
) -> None:
    """Of two detectors (two worker processes), the first to pass takes the lease, opens
    the anomaly and reports it (event, operational webhook ``hookline.anomaly.failure_spike``,
    metric); the second does no pass while the lease holds. Once the first has stopped
    passing for longer than its lease, the second takes over and, the window quiet for
    ``RESOLVE_AFTER``, ends the anomaly and reports the end, once."""
    endpoint_id = await _history_then_spike(ops.store)
    heard = Heard()
    publisher = OperationalPublisher()
    (tmp_path / "metrics").mkdir()
    metrics = MetricsHook(str(tmp_path / "metrics"), "test")
    ops.ops.instrumentation = Instrumentation([heard, publisher, metrics])
    await operational_webhooks.create(
        ops.ops, SYSTEM, EndpointFields(url="https://ops.example/hook")
    )
    now = HOUR + timedelta(minutes=20, seconds=5)
    ops.ops.clock = lambda: now
    first, second = AnomalyDetector(), AnomalyDetector()

    found = await first.evaluate(ops.ops)
    assert found is not None
    assert [(s.key, f.kind) for s, f in found.opened] == [(endpoint_id, rules.FAILURE_SPIKE)]
    assert await second.evaluate(ops.ops) is None
    detected = heard.of(AnomalyDetected)
    assert len(detected) == 1
    assert isinstance(detected[0], AnomalyDetected)
    anomaly = detected[0].anomaly
    assert (anomaly.endpoint_id, anomaly.kind, anomaly.scope) == (
        endpoint_id,
        rules.FAILURE_SPIKE,
        rules.ENDPOINT,
    )
    assert anomaly.observed == 1.0
    assert anomaly.expected == 0.0
    (stored,) = await ops.store.open_anomalies()
    assert stored.id == anomaly.id

    assert await publisher.flush(ops.ops) == 1
    page = await ops.store.list_messages(OPERATIONAL_APP_ID, ListQuery(), MessageFilter())
    (webhook,) = [orjson.loads(m.payload or b"{}") for m in page.data]
    assert webhook["type"] == "hookline.anomaly.failure_spike"
    data = webhook["data"]
    assert data["anomalyId"] == anomaly.id
    assert (data["scope"], data["endpointId"], data["unit"]) == ("endpoint", endpoint_id, "ratio")
    assert data["resolvedAt"] is None
    assert "100% of the attempts" in data["description"]

    exposition = metrics.exposition().decode()
    assert (
        'hookline_anomalies_detected_total{kind="failure_spike",scope="endpoint"} 1.0' in exposition
    )
    assert 'hookline_open_anomalies{kind="failure_spike"} 1.0' in exposition

    now = HOUR + timedelta(minutes=26, seconds=5)
    taken_over = await second.evaluate(ops.ops)
    assert taken_over is not None and len(taken_over.resolved) == 1
    assert await first.evaluate(ops.ops) is None
    resolved = heard.of(AnomalyResolved)
    assert len(resolved) == 1
    assert await ops.store.open_anomalies() == []
    (ended,) = (await ops.store.list_anomalies(ListQuery(), "resolved")).data
    assert ended.id == anomaly.id
    assert ended.resolved_at == now.replace(microsecond=0)
    assert await publisher.flush(ops.ops) == 1
    page = await ops.store.list_messages(OPERATIONAL_APP_ID, ListQuery(), MessageFilter())
    types = sorted(orjson.loads(m.payload or b"{}")["type"] for m in page.data)
    assert types == ["hookline.anomaly.failure_spike", "hookline.anomaly.resolved"]
    assert 'hookline_open_anomalies{kind="failure_spike"} 0.0' in metrics.exposition().decode()


async def test_a_steady_endpoint_raises_nothing_and_detection_skips_young_subjects(
    ops: Ops,
) -> None:
    """The same history followed by more successes raises no anomaly; and an endpoint
    created within the hour (no hour of history) is not judged, however its window looks."""
    claimed = await _endpoint_with_deliveries(ops.store, 4 * HISTORY_PER_HOUR + SPIKE)
    outcomes = [
        recorded_outcome(c, 200, HOUR - timedelta(hours=4 - i // HISTORY_PER_HOUR, minutes=-i % 60))
        for i, c in enumerate(claimed[: 4 * HISTORY_PER_HOUR])
    ]
    start = HOUR + timedelta(minutes=15)
    outcomes += [
        recorded_outcome(c, 200, start + timedelta(seconds=7 * i))
        for i, c in enumerate(claimed[4 * HISTORY_PER_HOUR :])
    ]
    await ops.store.complete(outcomes)
    young = await _endpoint_with_deliveries(ops.store, SPIKE, HOUR + timedelta(minutes=1))
    failing = [
        recorded_outcome(c, 500, start + timedelta(seconds=7 * i)) for i, c in enumerate(young)
    ]
    await ops.store.complete(failing)
    heard = Heard()
    ops.ops.instrumentation = Instrumentation([heard])
    ops.ops.clock = lambda: HOUR + timedelta(minutes=20, seconds=5)
    found = await AnomalyDetector().evaluate(ops.ops)
    assert found is not None
    assert (found.opened, found.seen, found.resolved) == ([], [], [])
    evaluated = heard.of(AnomaliesEvaluated)
    assert len(evaluated) == 1
    assert isinstance(evaluated[0], AnomaliesEvaluated)
    assert evaluated[0].open_by_kind == dict.fromkeys(rules.KINDS, 0)
