"""``/api/v1/stats/usage``: Svix's statistics operations, started as background tasks (admin
only); their results are the tasks' ``data`` (``GET /api/v1/background-task/{id}``)."""

from __future__ import annotations

from hookline.api import params
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, model_response
from hookline.operations import statistics
from hookline.operations.context import Operations


async def aggregate_app_stats(ops: Operations, request: Request) -> Response:
    body = params.body(s.AppUsageStatsIn, request)
    task, unresolved = await statistics.start_app_usage(
        ops, request.caller, body.since, body.until, body.app_ids
    )
    out = s.AppUsageStatsOut(
        id=task.id,
        status=task.status.wire,
        task=task.kind.wire,
        updated_at=task.updated_at,
        unresolved_app_ids=unresolved,
    )
    return model_response(202, out)


async def aggregate_event_types(ops: Operations, request: Request) -> Response:
    task = await statistics.start_event_type_aggregate(ops, request.caller)
    out = s.AggregateEventTypesOut(
        id=task.id, status=task.status.wire, task=task.kind.wire, updated_at=task.updated_at
    )
    return model_response(202, out)


ROUTES = [
    Route(
        "POST",
        "/api/v1/stats/usage/app",
        aggregate_app_stats,
        "Start counting every application's attempts in a time range (a background task)",
        "Statistics",
        Access.ADMIN,
        body=s.AppUsageStatsIn,
        response=s.AppUsageStatsOut,
        status=202,
    ),
    Route(
        "PUT",
        "/api/v1/stats/usage/event-types",
        aggregate_event_types,
        "Start listing the event types every application subscribes to (a background task)",
        "Statistics",
        Access.ADMIN,
        response=s.AggregateEventTypesOut,
        status=202,
    ),
]
