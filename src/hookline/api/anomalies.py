"""``GET /api/v1/anomalies`` (hookline's own): what anomaly detection found, open and
resolved. Admins only: anomalies span every application."""

from __future__ import annotations

import re

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.operations import anomalies
from hookline.operations.context import Operations

_STATUS = re.compile(r"^(open|resolved)$")


async def list_anomalies(ops: Operations, request: Request) -> Response:
    status = params.query_matching(request, "status", _STATUS)
    found = await anomalies.list_anomalies(
        ops, request.caller, params.list_query(request, True), status
    )
    return json_response(200, serialize.page(found, lambda a: serialize.dump(serialize.anomaly(a))))


ROUTES = [
    Route(
        "GET",
        "/api/v1/anomalies",
        list_anomalies,
        "List anomalies in traffic, newest first; `status` open or resolved (hookline)",
        "Health",
        Access.ADMIN,
        response=s.ListResponse[s.AnomalyOut],
        query=("limit", "iterator", "order", "status"),
    ),
]
