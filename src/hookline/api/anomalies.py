"""Anomalies (hookline's own routes): what anomaly detection found, open and resolved;
every application's for admins (``/api/v1/anomalies``), one application's for its tokens
(``/api/v1/app/{app_id}/anomalies``)."""

from __future__ import annotations

import re

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.domain.anomaly import Anomaly
from hookline.domain.capabilities import Capability
from hookline.domain.models import Page
from hookline.operations import anomalies
from hookline.operations.context import Operations

_STATUS = re.compile(r"^(open|resolved)$")
_QUERY = ("limit", "iterator", "order", "status")


def _page(found: Page[Anomaly]) -> Response:
    return json_response(200, serialize.page(found, lambda a: serialize.dump(serialize.anomaly(a))))


async def list_anomalies(ops: Operations, request: Request) -> Response:
    status = params.query_matching(request, "status", _STATUS)
    query = params.list_query(request, True)
    return _page(await anomalies.list_anomalies(ops, request.caller, query, status))


async def list_app_anomalies(ops: Operations, request: Request) -> Response:
    status = params.query_matching(request, "status", _STATUS)
    query = params.list_query(request, True)
    found = await anomalies.list_for_application(
        ops, request.caller, request.app_key, query, status
    )
    return _page(found)


ROUTES = [
    Route(
        "GET",
        "/api/v1/anomalies",
        list_anomalies,
        "List anomalies in traffic, newest first; `status` open or resolved (hookline)",
        "Health",
        Access.ADMIN,
        response=s.ListResponse[s.AnomalyOut],
        query=_QUERY,
    ),
    Route(
        "GET",
        "/api/v1/app/{app_id}/anomalies",
        list_app_anomalies,
        "List an application's anomalies, newest first; `status` open or resolved (hookline)",
        "Health",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.AnomalyOut],
        query=_QUERY,
    ),
]
