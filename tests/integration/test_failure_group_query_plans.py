"""The reads of a failure-grouping pass and of the failure-group lists go through indexes:
none scans a table (SQLite's plans, which need no statistics to be stable), so a pass costs
the failing endpoints' attempts, not every attempt of the database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from hookline.domain.failure_groups import GroupFilter, GroupStatus
from hookline.storage.base import ListQuery
from hookline.storage.sqlite import SqliteStore
from tests.conftest import utcnow


async def test_a_pass_and_the_lists_read_through_indexes(tmp_path: Path) -> None:
    """``endpoints_with_failures`` (endpoint_rollups_period), ``failed_attempts``
    (attempts_endpoint), ``quiet_failure_groups`` (failure_groups_quiet) and the lists by
    application or status (failure_groups_app, the primary key) plan no table SCAN."""
    store = SqliteStore(str(tmp_path / "plans.db"))
    await store.open()
    issued: list[tuple[str, dict[str, Any]]] = []
    connector: Any = store._db
    query: Callable[[str, dict[str, Any]], Awaitable[list[Any]]] = connector.query

    async def recording(name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        issued.append((connector.queries.get(name_or_sql, name_or_sql), params))
        return await query(name_or_sql, params)

    connector.query = recording
    now = utcnow()
    await store.endpoints_with_failures(now - timedelta(hours=1), now)
    await store.failed_attempts("ep_x", "atmpt_", "atmpt_~", 1000)
    await store.quiet_failure_groups(now, 500)
    await store.list_failure_groups(ListQuery(descending=True), GroupFilter(app_id="app_x"))
    await store.list_failure_groups(ListQuery(), GroupFilter(status=GroupStatus.OPEN))
    connector.query = query
    try:
        for text, params in issued:
            plan = await store._db.query("EXPLAIN QUERY PLAN " + text, params)
            details = [row[3] for row in plan]
            scans = [d for d in details if d.startswith("SCAN")]
            assert scans == [], (text, details)
    finally:
        await store.close()
    assert len(issued) == 5
