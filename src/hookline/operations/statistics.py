"""Statistics: an endpoint's attempt statistics, and Svix's statistics tasks.

Attempt counts are read from the attempt rollups (``domain/rollups.py``), never from the
attempts: a window of any length adds up a few hundred rows at most (hour rows over a
month, minute rows over the last two days), whatever the traffic was. The statistics tasks
(``application.stats``, ``event-type.aggregate``) are background tasks of the
organization, stored and shown like the others; a task runner computes each in one step
(``compute``) and stores the result as its ``data``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from hookline.domain import audit as a
from hookline.domain.errors import InvalidRequest
from hookline.domain.models import Page
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.domain.rollups import EndpointShare, Rollup, RollupSummary, summarize, window
from hookline.domain.tasks import (
    NO_APPLICATION,
    BackgroundTask,
    TaskFilter,
    TaskKind,
    new_task,
)
from hookline.domain.usage import app_usage, event_type_usage
from hookline.operations import applications, inputs
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.endpoints import in_application
from hookline.operations.principal import Principal
from hookline.storage.base import MAX_LIST_LIMIT, ListQuery

T = TypeVar("T")
_APP_IDS = ("body", "appIds")


async def attempt_stats(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RollupSummary:
    """An endpoint's attempts that started in [``since``, ``until``), by outcome; the bounds
    are widened to whole rows (minutes for a window within the minutes kept, else hours, as
    Svix rounds to hours). An open bound is open: everything retention kept."""
    since, until = inputs.window("query", since, until)
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await in_application(ops, app, key)
    rows = window(since, until, ops.clock())
    return await ops.store.sum_rollups(endpoint.id, rows.period_seconds, rows.start, rows.end)


async def start_app_usage(
    ops: Operations,
    principal: Principal,
    since: datetime,
    until: datetime,
    app_keys: Sequence[str] | None,
) -> tuple[BackgroundTask, list[str]]:
    """Start Svix's ``application.stats`` task (admin only): the attempts each application
    made in [``since``, ``until``), from the rollups; the given ids or uids that name no
    application come back (all of them unresolved is a 422, as in Svix)."""
    principal.require_admin()
    # Both are required, so the input rules give them back checked, never None.
    since = inputs.time(("body", "since"), since) or since
    until = inputs.time(("body", "until"), until) or until
    inputs.in_order("body", since, until)
    resolved: list[str] | None = None
    unresolved: list[str] = []
    if app_keys is not None:
        resolved = []
        for key in app_keys:
            app = await ops.store.get_application(key)
            if app is None or app.id == OPERATIONAL_APP_ID:
                unresolved.append(key)
            elif app.id not in resolved:
                resolved.append(app.id)
        if not resolved and unresolved:
            raise InvalidRequest("none of the given appIds names an application", loc=_APP_IDS)
    spec = TaskFilter(
        since=since, until=until, app_ids=None if resolved is None else tuple(resolved)
    )
    return await _start(ops, principal, TaskKind.APP_STATS, spec), unresolved


async def start_event_type_aggregate(ops: Operations, principal: Principal) -> BackgroundTask:
    """Start Svix's ``event-type.aggregate`` task (admin only): the event types every
    application's endpoints subscribe to."""
    principal.require_admin()
    now = ops.clock()
    return await _start(ops, principal, TaskKind.EVENT_TYPE_AGGREGATE, TaskFilter(now, now))


async def _start(
    ops: Operations, principal: Principal, kind: TaskKind, spec: TaskFilter
) -> BackgroundTask:
    task = new_task(NO_APPLICATION, None, kind, spec, ops.clock())
    await ops.store.create_task(task)
    ops.task_queued()
    await record(ops, principal, a.TASK_STARTED, target_id=task.id, summary={"task": kind.wire})
    return task


async def compute(ops: Operations, task: BackgroundTask) -> dict[str, object]:
    """A statistics task's result (its ``data``), computed by a task runner in one step."""
    if task.kind is TaskKind.APP_STATS:
        return {"appStats": await _app_stats(ops, task.filter)}
    return {"event_types": await _event_types(ops)}


async def _app_stats(ops: Operations, spec: TaskFilter) -> list[dict[str, object]]:
    rows = window(spec.since, spec.until, ops.clock())
    start = rows.start or spec.since
    end = rows.end or spec.until
    made = await ops.store.app_attempts(rows.period_seconds, start, end)
    app_ids = list(spec.app_ids) if spec.app_ids is not None else sorted(made)
    stats: list[dict[str, object]] = []
    for app_id in app_ids:
        app = await ops.store.get_application(app_id)
        # Operational webhooks are hookline's own deliveries, not an application's.
        if app is not None and app.id != OPERATIONAL_APP_ID:
            stats.append(app_usage(app, made.get(app_id, 0)))
    return stats


async def _event_types(ops: Operations) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    async for app in _every(ops.store.list_applications):
        filters = [ep.event_types async for ep in _every(partial(ops.store.list_endpoints, app.id))]
        if filters:
            found.append(event_type_usage(app.id, filters))
    return found


async def _every(page: Callable[[ListQuery], Awaitable[Page[T]]]) -> AsyncIterator[T]:
    """Every item of a paged list, a page at a time."""
    iterator: str | None = None
    while True:
        got = await page(ListQuery(limit=MAX_LIST_LIMIT, iterator=iterator))
        for item in got.data:
            yield item
        if got.done or got.iterator is None:
            return
        iterator = got.iterator


@dataclass(frozen=True, slots=True)
class DeploymentWindow:
    """Every application's attempts over a recent window, from the rollups: the console's
    overview. ``series`` holds one summed row per minute that had attempts."""

    since: datetime
    until: datetime
    series: list[Rollup]
    total: RollupSummary
    worst: list[EndpointShare]


async def deployment_window(
    ops: Operations, principal: Principal, span: timedelta, min_attempts: int, worst: int
) -> DeploymentWindow:
    """The last ``span`` of attempts across the deployment (admins only): minute rows added
    up by the database, never the attempts, so it costs the same at any traffic; and the
    ``worst`` endpoints by failed attempts among those with ``min_attempts`` or more."""
    principal.require_admin()
    now = ops.clock()
    rows = window(now - span, now, now)
    start = rows.start or now - span
    end = rows.end or now
    series = await ops.store.rollup_series(rows.period_seconds, start, end)
    shares = await ops.store.worst_endpoints(rows.period_seconds, start, end, min_attempts, worst)
    return DeploymentWindow(start, end, series, summarize(series), shares)
