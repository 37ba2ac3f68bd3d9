"""Anomaly detection in a real ``hookline serve``: the detector task runs in the server
process, reads the rollups from the database, and its finding reaches an operator's
receiver as a signed operational webhook over real HTTP, the log, ``/metrics`` and
``GET /api/v1/anomalies``.

A baseline needs hours of history and the window five complete minutes, so the history and
the failing minutes are recorded into the database (through the store, as a worker records
attempts) before the server starts; the rules themselves are checked with synthetic traffic
in ``tests/unit/test_anomaly.py``. The operational endpoint is made before the start too,
because the detector's first pass runs as the server starts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from standardwebhooks import Webhook

from hookline.config import load_settings
from hookline.domain.anomaly import hour_start
from hookline.operations import operational_webhooks
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields
from hookline.operations.principal import SYSTEM
from hookline.server import open_store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome
from tests.e2e.harness import (
    ADMIN_TOKEN,
    ENCRYPTION_KEYS,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

HISTORY_PER_HOUR = 30
FAILING = 40


async def _seed(database_url: str, ops_url: str) -> tuple[str, str]:
    """Four hours of successes for an endpoint created ten days ago, then every attempt
    failing in the last two complete minutes, and an operational endpoint at ``ops_url``;
    the failing endpoint's id and the operational endpoint's secret."""
    settings = load_settings(
        {"database_url": database_url, "encryption_keys": ENCRYPTION_KEYS}, environ={}
    )
    store = open_store(settings)
    await store.open()
    try:
        now = datetime.now(UTC)
        app = make_app()
        await store.create_application(app)
        born = now - timedelta(days=10)
        endpoint = dataclasses.replace(make_endpoint(app), created_at=born, updated_at=born)
        await store.create_endpoint(endpoint)
        n = 4 * HISTORY_PER_HOUR + FAILING
        await store.publish([make_message(app) for _ in range(n)], now)
        claimed = await store.claim_due(n, now, now + timedelta(minutes=5), "seed")
        hour = hour_start(now)
        outcomes = [
            recorded_outcome(
                c, 200, hour - timedelta(hours=4 - i // HISTORY_PER_HOUR, minutes=-i % 60)
            )
            for i, c in enumerate(claimed[: 4 * HISTORY_PER_HOUR])
        ]
        minute = now.replace(second=0, microsecond=0) - timedelta(minutes=2)
        failing = claimed[4 * HISTORY_PER_HOUR :]
        outcomes += [
            recorded_outcome(c, 500, minute + timedelta(seconds=3 * i))
            for i, c in enumerate(failing)
        ]
        await store.complete(outcomes)
        ops = Operations(store)
        created = await operational_webhooks.create(ops, SYSTEM, EndpointFields(url=ops_url))
        secret = await operational_webhooks.secret(ops, SYSTEM, created.id)
        return endpoint.id, secret
    finally:
        await store.close()


def test_a_failure_spike_reaches_the_operator_as_a_signed_webhook_a_log_line_and_a_metric(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A running server flags the endpoint whose every recent attempt failed: the operator's
    receiver gets ``hookline.anomaly.failure_spike`` (verified with ``standardwebhooks``),
    the log says it, ``/metrics`` counts it and ``GET /api/v1/anomalies`` lists it open."""
    url = sqlite_url(tmp_path)
    hookline = HooklineProcess(url, free_port(), {"HOOKLINE_METRICS": "true"}, tmp_path)
    hookline.run_command("migrate")
    endpoint_id, secret = asyncio.run(_seed(url, f"{receiver.url}/ops"))
    hookline.start("--dev")  # --dev lets deliveries reach the loopback receiver
    try:
        wait_until(lambda: bool(receiver.received("/ops")), 15, "the operational webhook")
        (request,) = receiver.received("/ops")
        headers = {k.lower(): v for k, v in request.headers.items()}
        Webhook(secret).verify(request.body, headers)
        body = json.loads(request.body)
        assert body["type"] == "hookline.anomaly.failure_spike"
        data = body["data"]
        assert (data["endpointId"], data["scope"], data["observed"], data["expected"]) == (
            endpoint_id,
            "endpoint",
            1.0,
            0.0,
        )

        auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
        listed = httpx.get(f"{hookline.url}/api/v1/anomalies?status=open", headers=auth)
        assert listed.status_code == 200
        (anomaly,) = listed.json()["data"]
        assert (anomaly["id"], anomaly["kind"]) == (data["anomalyId"], "failure_spike")

        metrics = httpx.get(f"{hookline.url}/metrics").text
        assert (
            'hookline_anomalies_detected_total{kind="failure_spike",scope="endpoint"} 1.0'
            in metrics
        )
        assert 'hookline_open_anomalies{kind="failure_spike"} 1.0' in metrics
        assert f"anomaly {data['anomalyId']} (failure_spike)" in hookline.output()
    finally:
        assert hookline.terminate() == 0, hookline.output()
