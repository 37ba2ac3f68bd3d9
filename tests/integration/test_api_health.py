"""The health routes: liveness never asks the database; readiness answers 503 only while
the database does not, and reports workers and backlog without failing on them."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookline.domain.errors import Unavailable
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.conftest import Api

READINESS = ("/health/ready", "/health", "/api/v1/health")
LIVENESS = ("/health/live", "/health/ping", "/api/v1/health/ping")


def _anonymous(api: Api) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=api.client._transport, base_url="http://h")


async def test_readiness_is_200_with_no_worker_and_nothing_due(api: Api) -> None:
    """With the database up, no worker and an empty queue, every readiness path answers 200
    and reports no live worker and a backlog age of 0, without a token."""
    async with _anonymous(api) as anon:
        for path in READINESS:
            r = await anon.get(path)
            assert r.status_code == 200, path
            assert r.json() == {
                "status": "ok",
                "database": "ok",
                "failing": [],
                "detail": None,
                "liveWorkers": 0,
                "backlogAgeSeconds": 0.0,
            }


async def test_readiness_reports_live_workers_and_the_oldest_due_delivery(api: Api) -> None:
    """Readiness counts the workers heard from within the stall timeout (20 s) and the age of
    the oldest due delivery, and stays 200 however old the backlog is."""
    now = utcnow()
    await api.store.heartbeat("alive", now)
    await api.store.heartbeat("gone", now - timedelta(minutes=5))
    app = make_app()
    await api.store.create_application(app)
    await api.store.create_endpoint(make_endpoint(app))
    await api.store.publish([make_message(app)], now - timedelta(hours=2))
    r = await api.client.get("/health/ready")
    assert r.status_code == 200
    body = r.json()
    assert body["liveWorkers"] == 1
    assert 2 * 3600 <= body["backlogAgeSeconds"] < 2 * 3600 + 60


async def test_readiness_is_503_naming_the_database_while_liveness_stays_200(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the database does not answer, readiness is 503 with a body naming the failed
    check, and liveness still answers 200 (it never asks the database)."""

    async def down(*_args: Any) -> None:
        raise Unavailable("the database did not answer")

    monkeypatch.setattr(api.store, "queue_health", down)
    async with _anonymous(api) as anon:
        for path in READINESS:
            r = await anon.get(path)
            assert r.status_code == 503, path
            assert r.json() == {
                "status": "unavailable",
                "database": "down",
                "failing": ["database"],
                "detail": "the database did not answer",
                "liveWorkers": None,
                "backlogAgeSeconds": None,
            }
        for path in LIVENESS:
            r = await anon.get(path)
            assert (r.status_code, r.json()) == (200, {"status": "ok"}), path


async def test_the_queue_health_query_reads_deliveries_through_indexes(tmp_path: Path) -> None:
    """SQLite plans ``queue_health`` with index searches of deliveries only: readiness, asked
    every few seconds, never scans the queue (PostgreSQL's form steps through the same
    indexes with LATERAL probes)."""
    store = SqliteStore(str(tmp_path / "plans.db"))
    await store.open()
    try:
        text = store._db.queries["queue_health"]
        plan = await store._db.query("EXPLAIN QUERY PLAN " + text, {"alive_since": 0})
        details = [row[3] for row in plan]
        scans = {d for d in details if d.startswith("SCAN") and " USING " not in d}
        # Scanned whole: the workers table, the endpoints (one probe each) and the heads the
        # query itself built; never deliveries (d, y, z).
        assert scans <= {"SCAN CONSTANT ROW", "SCAN workers", "SCAN e", "SCAN h", "SCAN first_head"}
        assert any("deliveries_endpoint_due" in d for d in details)
        assert any("deliveries_sequence" in d for d in details)
    finally:
        await store.close()
