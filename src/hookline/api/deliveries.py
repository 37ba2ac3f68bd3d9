"""Searching deliveries (hookline's own route, for the operator console): every
application's deliveries, newest message first, filtered and searched by payload and header
terms (``domain/search.py``; docs/search.md)."""

from __future__ import annotations

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.domain.search import DeliveryRow
from hookline.operations import deliveries
from hookline.operations.context import Operations
from hookline.storage.base import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT

_CODE_CLASSES = {"0", "100", "200", "300", "400", "500"}
_QUERY = (
    "limit",
    "iterator",
    "app_id",
    "endpoint_id",
    "event_types",
    "status",
    "status_code",
    "status_code_class",
    "before",
    "after",
    "q",
)


def _row(row: DeliveryRow) -> s.DeliveryOut:
    return s.DeliveryOut(
        id=row.id,
        app_id=row.app_id,
        msg_id=row.msg_id,
        endpoint_id=row.endpoint_id,
        event_type=row.event_type,
        status=int(row.status),
        status_text=row.status.text,
        attempt_count=row.attempt_count,
        last_status_code=row.last_status_code,
        next_attempt=row.next_attempt_at,
        updated_at=row.updated_at,
        timestamp=row.timestamp,
    )


def _query(request: Request) -> deliveries.DeliveryQuery:
    code_class = request.query_one("status_code_class")
    if code_class and code_class not in _CODE_CLASSES:
        raise params.QueryError("status_code_class", "must be one of 0, 100, 200, 300, 400, 500")
    code = request.query_one("status_code")
    return deliveries.DeliveryQuery(
        application=params.query_key(request, "app_id"),
        endpoint=params.query_key(request, "endpoint_id"),
        event_types=params.query_keys(request, "event_types"),
        status=params.query_status(request),
        status_code=params.query_int(request, "status_code", 0, 0, 599) if code else None,
        status_code_class=int(code_class) if code_class else None,
        before=params.query_datetime(request, "before"),
        after=params.query_datetime(request, "after"),
        q=request.query_one("q"),
        limit=params.query_int(request, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT),
        iterator=request.query_one("iterator"),
    )


async def search_deliveries(ops: Operations, request: Request) -> Response:
    found = await deliveries.search(ops, request.caller, _query(request))
    return json_response(200, serialize.page(found, lambda r: serialize.dump(_row(r))))


ROUTES = [
    Route(
        "GET",
        "/api/v1/deliveries",
        search_deliveries,
        "Search every application's deliveries, newest message first: filters, and `q` "
        "for payload words, `path=value` and `header.<name>=value` terms (hookline)",
        "Message Attempt",
        Access.ADMIN,
        response=s.ListResponse[s.DeliveryOut],
        query=_QUERY,
    ),
]
