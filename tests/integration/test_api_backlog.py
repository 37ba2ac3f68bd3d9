"""``GET /api/v1/backlog`` and the backlog monitor behind it: the due count, the oldest due
delivery's age and the drain forecast from the process's samples."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest

from hookline.domain.errors import Forbidden
from hookline.operations.backlog import BacklogMonitor, backlog
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM, Principal
from hookline.storage.base import Store
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.conftest import Api


async def test_an_empty_queue_reports_nothing_due(api: Api) -> None:
    """With nothing published the backlog is empty, with no age and no forecast needed."""
    r = await api.client.get("/api/v1/backlog")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["due"], body["drain"], body["drainSeconds"]) == (0, "empty", None)
    assert body["oldestDueAt"] is None
    assert body["oldestDueAgeSeconds"] == 0
    assert body["forecast"] == "nothing is due"


async def test_due_deliveries_are_counted_with_their_age_before_any_forecast(api: Api) -> None:
    """Three deliveries due for an hour: the first sample counts them and their age, and
    says it cannot forecast yet rather than guessing."""
    app = make_app()
    await api.store.create_application(app)
    await api.store.create_endpoint(make_endpoint(app))
    messages = [make_message(app) for _ in range(3)]
    await api.store.publish(messages, utcnow() - timedelta(hours=1))
    body = (await api.client.get("/api/v1/backlog")).json()
    assert (body["due"], body["drain"], body["drainSeconds"]) == (3, "unknown", None)
    assert 3600 <= body["oldestDueAgeSeconds"] < 3660
    assert "too few samples" in body["forecast"]


async def test_the_forecast_follows_the_backlog_as_workers_take_it(store: Store) -> None:
    """Samples 15 s apart while a worker takes 30 of 100 due deliveries each time: the
    backlog drains at 2 a second, so the last 10 clear in 5 s; a principal scoped to an
    application may not read it."""
    start = utcnow()
    clock = [start]
    ops = Operations(store, clock=lambda: clock[0], backlog=BacklogMonitor(15.0))
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app) for _ in range(100)], start - timedelta(minutes=1))
    for step in range(4):
        clock[0] = start + timedelta(seconds=15 * step)
        state = await ops.backlog.sample(ops)
        assert state.due == 100 - 30 * step
        await store.claim_due(30, clock[0], start + timedelta(hours=1), "w")
    assert state.drain_seconds == pytest.approx(5.0)
    assert await backlog(ops, SYSTEM) == state
    clock[0] = start + timedelta(minutes=5)
    stale: datetime = (await backlog(ops, SYSTEM)).sampled_at
    assert stale == clock[0]
    with pytest.raises(Forbidden):
        await backlog(ops, Principal(token_id="tok_1", app_id=app.id))


async def test_the_backlog_sample_reads_deliveries_per_endpoint(tmp_path: Path) -> None:
    """SQLite plans ``backlog_sample`` as one index probe of deliveries per endpoint, never a
    walk of a whole index with an endpoint looked up per row (2.5 times slower at 1,000,000
    due rows; docs/performance-decisions.md, "Scrape and backlog sample at scale")."""
    store = SqliteStore(str(tmp_path / "plans.db"))
    await store.open()
    try:
        text = store._db.queries["backlog_sample"]
        plan = await store._db.query("EXPLAIN QUERY PLAN " + text, {"now": 0, "alive_since": 0})
        details = [row[3] for row in plan]
        assert not [d for d in details if d.startswith("SCAN d ")]
        assert "SCAN e" in details
        searches = [d for d in details if d.startswith("SEARCH d USING INDEX")]
        assert len(searches) == 2
        assert any("deliveries_endpoint_due (endpoint_id=?" in d for d in searches)
        assert any("deliveries_sequence (endpoint_id=?" in d for d in searches)
    finally:
        await store.close()
