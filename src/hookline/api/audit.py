"""The audit log (hookline's own routes): the whole log for admins, one application's for
its tokens. Read-only: the log has no route that changes or removes an entry."""

from __future__ import annotations

import re

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.domain.audit import (
    ACTION_PATTERN,
    ACTOR_PATTERN,
    MAX_ACTION_LENGTH,
    AuditEntry,
    AuditFilter,
)
from hookline.domain.capabilities import Capability
from hookline.domain.models import Page
from hookline.operations import audit_log
from hookline.operations.context import Operations

_ACTION = re.compile(ACTION_PATTERN)
_QUERY = ("limit", "iterator", "order", "actor", "action", "since", "until")
_ACTOR = re.compile(ACTOR_PATTERN)


def _filters(request: Request, app_id: str | None = None) -> AuditFilter:
    return AuditFilter(
        app_id=app_id,
        actor=params.query_matching(request, "actor", _ACTOR),
        action=params.query_matching(request, "action", _ACTION, MAX_ACTION_LENGTH),
        since=params.query_datetime(request, "since"),
        until=params.query_datetime(request, "until"),
    )


def _page(found: Page[AuditEntry]) -> Response:
    return json_response(
        200, serialize.page(found, lambda e: serialize.dump(serialize.audit_entry(e)))
    )


async def list_audit(ops: Operations, request: Request) -> Response:
    filters = _filters(request, params.query_key(request, "app_id"))
    found = await audit_log.list_entries(
        ops, request.caller, params.list_query(request, True), filters
    )
    return _page(found)


async def list_app_audit(ops: Operations, request: Request) -> Response:
    found = await audit_log.list_for_application(
        ops, request.caller, request.app_key, params.list_query(request, True), _filters(request)
    )
    return _page(found)


ROUTES = [
    Route(
        "GET",
        "/api/v1/audit",
        list_audit,
        "List the audit log: every change, newest first (hookline)",
        "Audit log",
        Access.ADMIN,
        response=s.ListResponse[s.AuditEntryOut],
        query=("app_id", *_QUERY),
    ),
    Route(
        "GET",
        "/api/v1/app/{app_id}/audit",
        list_app_audit,
        "List an application's audit log, newest first (hookline)",
        "Audit log",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.AuditEntryOut],
        query=_QUERY,
    ),
]
