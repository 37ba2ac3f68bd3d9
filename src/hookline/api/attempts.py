"""Attempt logs and manual resends: what happened to each (message, endpoint) pair."""

from __future__ import annotations

from hookline.api import params, resolve, serialize
from hookline.api import schemas as s
from hookline.api.app import Services
from hookline.api.http import Request, Response, Route, json_response, model_response
from hookline.domain.errors import NotFound
from hookline.domain.models import Attempt, MessageStatus
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


async def list_by_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    found = await svc.store.list_attempts(
        app.id, params.list_query(request, True), _attempt_filter(request, endpoint.id), None
    )
    return json_response(200, serialize.page(found, _attempt_json))


async def list_by_message(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    endpoint_id = request.query_one("endpoint_id") or None
    if endpoint_id is not None:
        endpoint = await svc.store.get_endpoint(app.id, endpoint_id)
        endpoint_id = endpoint.id if endpoint is not None else endpoint_id
    found = await svc.store.list_attempts(
        app.id, params.list_query(request, True), _attempt_filter(request, endpoint_id), msg.id
    )
    return json_response(200, serialize.page(found, _attempt_json))


def _attempt_json(attempt: Attempt) -> object:
    return serialize.dump(serialize.attempt(attempt))


async def get_attempt(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    attempt = await svc.store.get_attempt(app.id, request.path_params["attempt_id"])
    if attempt is None or attempt.msg_id != msg.id:
        raise NotFound("Message attempt not found")
    return model_response(200, serialize.attempt(attempt))


async def attempted_messages(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    with_content = params.query_bool(request, "with_content", default=True)
    found = await svc.store.list_attempted_messages(
        app.id, endpoint.id, params.list_query(request, True), params.message_filter(request)
    )
    return json_response(
        200,
        serialize.page(
            found, lambda p: serialize.dump(serialize.endpoint_message(p, with_content))
        ),
    )


async def attempted_destinations(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    found = await svc.store.list_attempted_destinations(
        app.id, msg.id, params.list_query(request, False)
    )
    return json_response(
        200, serialize.page(found, lambda p: serialize.dump(serialize.message_endpoint(p)))
    )


async def resend(svc: Services, request: Request) -> Response:
    """Queue one manual attempt now; it does not restart an exhausted retry schedule."""
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    endpoint = await resolve.endpoint(svc, request, app)
    delivery = await svc.store.get_delivery(msg.id, endpoint.id)
    if delivery is None:
        raise NotFound("This message was never sent to this endpoint")
    await svc.store.resend(app.id, msg.id, endpoint.id, svc.clock())
    svc.on_publish()
    return json_response(202, {})


APP = "/api/v1/app/{app_id}"
ROUTES = [
    Route(
        "GET",
        APP + "/attempt/endpoint/{endpoint_id}",
        list_by_endpoint,
        "List attempts to an endpoint",
        "Message Attempt",
        response=s.MessageAttemptOut,
        query=FILTERS,
    ),
    Route(
        "GET",
        APP + "/attempt/msg/{msg_id}",
        list_by_message,
        "List attempts of a message",
        "Message Attempt",
        response=s.MessageAttemptOut,
        query=(*FILTERS, "endpoint_id"),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/attempt/{attempt_id}",
        get_attempt,
        "Get an attempt",
        "Message Attempt",
        response=s.MessageAttemptOut,
    ),
    Route(
        "GET",
        APP + "/endpoint/{endpoint_id}/msg",
        attempted_messages,
        "List messages sent to an endpoint, with their delivery status",
        "Message Attempt",
        response=s.EndpointMessageOut,
        query=("limit", "iterator", "event_types", "channel", "before", "after", "with_content"),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/endpoint",
        attempted_destinations,
        "List endpoints a message was sent to",
        "Message Attempt",
        response=s.MessageEndpointOut,
        query=("limit", "iterator"),
    ),
    Route(
        "POST",
        APP + "/msg/{msg_id}/endpoint/{endpoint_id}/resend",
        resend,
        "Resend a message to an endpoint",
        "Message Attempt",
        status=202,
    ),
]
