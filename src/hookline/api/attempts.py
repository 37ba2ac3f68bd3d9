"""Attempt logs and manual resends: what happened to each (message, endpoint) pair."""

from __future__ import annotations

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response, model_response
from hookline.domain.models import Attempt, MessageStatus
from hookline.operations import attempts
from hookline.operations.context import Operations
from hookline.storage.base import AttemptFilter

STATUS_CLASSES = (0, 100, 200, 300, 400, 500)
FILTERS = (
    "limit",
    "iterator",
    "status",
    "status_code_class",
    "event_types",
    "channel",
    "before",
    "after",
)


def _attempt_filter(request: Request, endpoint_id: str | None) -> AttemptFilter:
    status = request.query_one("status")
    code_class = request.query_one("status_code_class")
    if status not in (None, "") and status not in {str(int(m)) for m in MessageStatus}:
        raise params.QueryError("status", "must be 0 (success), 1 (pending), 2 (fail) or 3")
    if code_class not in (None, "") and code_class not in {str(c) for c in STATUS_CLASSES}:
        raise params.QueryError("status_code_class", "must be one of 0, 100, 200, 300, 400, 500")
    base = params.message_filter(request)
    return AttemptFilter(
        status=MessageStatus(int(status)) if status else None,
        status_code_class=int(code_class) if code_class else None,
        event_types=base.event_types,
        channel=base.channel,
        before=base.before,
        after=base.after,
        endpoint_id=endpoint_id,
    )


async def list_by_endpoint(ops: Operations, request: Request) -> Response:
    found = await attempts.list_by_endpoint(
        ops,
        request.caller,
        request.app_key,
        request.path_params["endpoint_id"],
        params.list_query(request, True),
        _attempt_filter(request, None),
    )
    return json_response(200, serialize.page(found, _attempt_json))


async def list_by_message(ops: Operations, request: Request) -> Response:
    found = await attempts.list_by_message(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        params.list_query(request, True),
        _attempt_filter(request, request.query_one("endpoint_id") or None),
    )
    return json_response(200, serialize.page(found, _attempt_json))


def _attempt_json(attempt: Attempt) -> object:
    return serialize.dump(serialize.attempt(attempt))


async def get_attempt(ops: Operations, request: Request) -> Response:
    found = await attempts.get(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        request.path_params["attempt_id"],
    )
    return model_response(200, serialize.attempt(found))


async def attempted_messages(ops: Operations, request: Request) -> Response:
    with_content = params.query_bool(request, "with_content", default=True)
    found = await attempts.attempted_messages(
        ops,
        request.caller,
        request.app_key,
        request.path_params["endpoint_id"],
        params.list_query(request, True),
        params.message_filter(request),
    )
    return json_response(
        200,
        serialize.page(
            found, lambda p: serialize.dump(serialize.endpoint_message(p, with_content))
        ),
    )


async def attempted_destinations(ops: Operations, request: Request) -> Response:
    found = await attempts.attempted_destinations(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        params.list_query(request, False),
    )
    return json_response(
        200, serialize.page(found, lambda p: serialize.dump(serialize.message_endpoint(p)))
    )


async def resend(ops: Operations, request: Request) -> Response:
    await attempts.resend(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        request.path_params["endpoint_id"],
    )
    return json_response(202, {})


APP = "/api/v1/app/{app_id}"
ROUTES = [
    Route(
        "GET",
        APP + "/attempt/endpoint/{endpoint_id}",
        list_by_endpoint,
        "List attempts to an endpoint",
        "Message Attempt",
        Access.APP,
        response=s.MessageAttemptOut,
        query=FILTERS,
    ),
    Route(
        "GET",
        APP + "/attempt/msg/{msg_id}",
        list_by_message,
        "List attempts of a message",
        "Message Attempt",
        Access.APP,
        response=s.MessageAttemptOut,
        query=(*FILTERS, "endpoint_id"),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/attempt/{attempt_id}",
        get_attempt,
        "Get an attempt",
        "Message Attempt",
        Access.APP,
        response=s.MessageAttemptOut,
    ),
    Route(
        "GET",
        APP + "/endpoint/{endpoint_id}/msg",
        attempted_messages,
        "List messages sent to an endpoint, with their delivery status",
        "Message Attempt",
        Access.APP,
        response=s.EndpointMessageOut,
        query=("limit", "iterator", "event_types", "channel", "before", "after", "with_content"),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/endpoint",
        attempted_destinations,
        "List endpoints a message was sent to",
        "Message Attempt",
        Access.APP,
        response=s.MessageEndpointOut,
        query=("limit", "iterator"),
    ),
    Route(
        "POST",
        APP + "/msg/{msg_id}/endpoint/{endpoint_id}/resend",
        resend,
        "Resend a message to an endpoint",
        "Message Attempt",
        Access.APP,
        status=202,
    ),
]
