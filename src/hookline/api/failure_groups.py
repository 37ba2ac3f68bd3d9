"""Failure groups (hookline's own routes, docs/console.md "Failure groups"): every
application's for admins (``/api/v1/failure-group``), one application's for its tokens
(``/api/v1/app/{app_id}/failure-group``), with acknowledge, resolve and replay.

Replay takes ``?dry_run=true`` as the other task-starting routes do, and then answers 200
with the count it would send, changing nothing. The wire model lives here, beside its only
routes.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import Field

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import (
    Access,
    Handler,
    Request,
    Response,
    Route,
    json_response,
    model_response,
)
from hookline.domain.capabilities import Capability
from hookline.domain.failure_groups import FailureGroup, GroupFilter, GroupStatus
from hookline.domain.models import Page
from hookline.domain.tasks import TaskKind
from hookline.operations import failure_groups
from hookline.operations.context import Operations

ADMIN_LIST = "/api/v1/failure-group"
APP_LIST = "/api/v1/app/{app_id}/failure-group"
ONE = APP_LIST + "/{group_id}"
LISTS = (ADMIN_LIST, APP_LIST)
STATUS_PATTERN = re.compile(r"^(open|acknowledged|resolved)$")
STATUS_SCHEMA: dict[str, object] = {"type": "string", "enum": [s.value for s in GroupStatus]}
"""The ``status`` filter's schema on the list routes (``api/openapi.py``)."""
_PAGING = ("limit", "iterator", "order")


class FailureGroupOut(s.Wire):
    """hookline's own: failed attempts of one endpoint grouped by error."""

    id: str
    app_id: str
    endpoint_id: str
    outcome: str = Field(
        description="`4xx`, `5xx`, `3xx`, `timeout`, `connection`, `dns`, `tls`, "
        "`ssrf_blocked` or `other`"
    )
    status_code: int = Field(description="The answer's status code; 0 for no answer")
    status: str = Field(description="`open`, `acknowledged` or `resolved`")
    first_seen_at: datetime = Field(description="The first failure of this key ever grouped")
    opened_at: datetime = Field(description="The first failure since it (re)opened")
    last_seen_at: datetime
    failed_attempts: int = Field(description="Failed attempts since it (re)opened")
    messages: int = Field(description="Messages that failed, each once per grouping pass")
    sample: str = Field(description="The last error: the start of the body, or the reason")
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None = Field(description="`operator` or `automatic`")
    reopened: int = Field(description="Times a new failure reopened it after a resolve")


def failure_group_out(group: FailureGroup) -> FailureGroupOut:
    return FailureGroupOut(
        id=group.id,
        app_id=group.app_id,
        endpoint_id=group.endpoint_id,
        outcome=group.outcome,
        status_code=group.status_code,
        status=group.status.value,
        first_seen_at=group.first_seen_at,
        opened_at=group.opened_at,
        last_seen_at=group.last_seen_at,
        failed_attempts=group.attempts,
        messages=group.messages,
        sample=group.sample,
        acknowledged_at=group.acknowledged_at,
        resolved_at=group.resolved_at,
        resolved_by=None if group.resolved_by is None else group.resolved_by.value,
        reopened=group.reopened,
    )


def _page(found: Page[FailureGroup]) -> Response:
    return json_response(200, serialize.page(found, lambda g: serialize.dump(failure_group_out(g))))


def _filter(request: Request, app_id: str | None = None) -> GroupFilter:
    status = params.query_matching(request, "status", STATUS_PATTERN)
    return GroupFilter(
        status=None if status is None else GroupStatus(status),
        app_id=app_id,
        endpoint_id=params.query_key(request, "endpoint_id"),
    )


async def list_all(ops: Operations, request: Request) -> Response:
    filters = _filter(request, params.query_key(request, "app_id"))
    query = params.list_query(request, True)
    return _page(await failure_groups.list_all(ops, request.caller, query, filters))


async def list_for_application(ops: Operations, request: Request) -> Response:
    query = params.list_query(request, True)
    found = await failure_groups.list_for_application(
        ops, request.caller, request.app_key, query, _filter(request)
    )
    return _page(found)


async def get_group(ops: Operations, request: Request) -> Response:
    found = await failure_groups.get(
        ops, request.caller, request.app_key, request.path_params["group_id"]
    )
    return model_response(200, failure_group_out(found))


async def acknowledge(ops: Operations, request: Request) -> Response:
    found = await failure_groups.acknowledge(
        ops, request.caller, request.app_key, request.path_params["group_id"]
    )
    return model_response(200, failure_group_out(found))


async def resolve(ops: Operations, request: Request) -> Response:
    found = await failure_groups.resolve(
        ops, request.caller, request.app_key, request.path_params["group_id"]
    )
    return model_response(200, failure_group_out(found))


async def replay(ops: Operations, request: Request) -> Response:
    group_id = request.path_params["group_id"]
    if params.query_bool(request, "dry_run"):
        counted = await failure_groups.replay_count(ops, request.caller, request.app_key, group_id)
        return model_response(200, s.DryRunOut(task=TaskKind.REDRIVE.wire, count=counted))
    started = await failure_groups.replay(ops, request.caller, request.app_key, group_id)
    return model_response(202, serialize.background_task(started))


def _change(path: str, handler: Handler, summary: str) -> Route:
    return Route(
        "POST",
        path,
        handler,
        summary,
        "Failure group",
        Access.APP,
        capability=Capability.CREATE_ATTEMPTS,
        response=FailureGroupOut,
    )


ROUTES = [
    Route(
        "GET",
        ADMIN_LIST,
        list_all,
        "List every application's failure groups, newest first (hookline)",
        "Failure group",
        Access.ADMIN,
        response=s.ListResponse[FailureGroupOut],
        query=(*_PAGING, "status", "app_id", "endpoint_id"),
    ),
    Route(
        "GET",
        APP_LIST,
        list_for_application,
        "List an application's failure groups, newest first (hookline)",
        "Failure group",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[FailureGroupOut],
        query=(*_PAGING, "status", "endpoint_id"),
    ),
    Route(
        "GET",
        ONE,
        get_group,
        "Get a failure group (hookline)",
        "Failure group",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=FailureGroupOut,
    ),
    _change(ONE + "/acknowledge", acknowledge, "Acknowledge a failure group (hookline)"),
    _change(ONE + "/resolve", resolve, "Resolve a failure group by hand (hookline)"),
    Route(
        "POST",
        ONE + "/replay",
        replay,
        "Send a failure group's failed deliveries again, as a background task (hookline)",
        "Failure group",
        Access.APP,
        capability=Capability.CREATE_ATTEMPTS,
        response=s.BackgroundTaskOut,
        status=202,
        query=("dry_run",),
    ),
]
