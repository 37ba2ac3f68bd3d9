"""The reads background tasks and dead-letter lists make go through indexes: no batch and
no page scans a table (SQLite's plans, which need no statistics to be stable)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hookline.domain.tasks import BackgroundTask, TaskFilter, TaskKind, TaskStatus, first_cursor
from hookline.storage.base import DeadLetterFilter, ListQuery
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint, utcnow


def _task(kind: TaskKind) -> BackgroundTask:
    now = utcnow()
    since = now - timedelta(hours=1)
    return BackgroundTask(
        id="qtask_x",
        app_id="app_x",
        endpoint_id="ep_x",
        kind=kind,
        status=TaskStatus.RUNNING,
        filter=TaskFilter(since=since, until=now),
        cursor=first_cursor(kind, since),
        scanned=0,
        queued=0,
        error=None,
        created_at=now,
        updated_at=now,
    )


async def test_task_batches_and_dead_letter_pages_read_through_indexes(tmp_path: Path) -> None:
    """Every statement the task walks and the dead-letter list run is planned with index
    searches only (a table SCAN would read every message or delivery of the database)."""
    store = SqliteStore(str(tmp_path / "plans.db"))
    await store.open()
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    issued: list[tuple[str, dict[str, Any]]] = []
    connector: Any = store._db
    query: Callable[[str, dict[str, Any]], Awaitable[list[Any]]] = connector.query

    async def recording(name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        issued.append((connector.queries.get(name_or_sql, name_or_sql), params))
        return await query(name_or_sql, params)

    connector.query = recording
    for kind in TaskKind:
        await store.task_rows(_task(kind), _task(kind).cursor, 500)
    filters = DeadLetterFilter("ep_x", ("a.b",), 500, utcnow() - timedelta(days=1), utcnow())
    await store.list_dead_letters(app.id, ListQuery(descending=True), filters)
    await store.list_dead_letters(app.id, ListQuery(), DeadLetterFilter())
    await store.lease_task(utcnow(), utcnow(), "token")
    connector.query = query
    try:
        for text, params in issued:
            plan = await store._db.query("EXPLAIN QUERY PLAN " + text, params)
            details = [row[3] for row in plan]
            scans = [d for d in details if d.startswith("SCAN") and "json_each" not in d]
            assert scans == [], (text, details)
    finally:
        await store.close()
    assert len(issued) >= 7
