"""``/api/v1/app/{app_id}/msg``: publishing, reading and expunging messages.

A 202 is returned only after the message and its delivery rows are committed, so an
accepted message is never lost (DESIGN.md, "The store is the queue").
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson

from hookline.api import applications, params, resolve, serialize
from hookline.api import schemas as s
from hookline.api.app import Services
from hookline.api.http import (
    Request,
    Response,
    Route,
    empty_response,
    json_response,
    replay_record,
)
from hookline.domain import ids
from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.models import Application, Message
from hookline.storage.base import IdempotencyCompletion

DEFAULT_RETENTION_DAYS = 90


async def _application_for_publish(
    svc: Services, request: Request, body: s.MessageIn
) -> Application:
    """Svix lets a publish carry an inline ``application`` that is created when missing."""
    try:
        return await resolve.application(svc, request)
    except NotFound:
        if body.application is None or not request.principal.is_admin:
            raise
    app = applications.new_application(svc, body.application, uid=request.path_params["app_id"])
    await svc.store.create_application(app)
    return app


def _retention(body: s.MessageIn) -> timedelta:
    if body.payload_retention_period is not None and body.payload_retention_hours is not None:
        raise InvalidRequest(
            "payloadRetentionPeriod and payloadRetentionHours are mutually exclusive",
            loc=("body", "payloadRetentionHours"),
        )
    if body.payload_retention_hours is not None:
        return timedelta(hours=body.payload_retention_hours)
    return timedelta(days=body.payload_retention_period or DEFAULT_RETENTION_DAYS)


def build_message(svc: Services, app: Application, body: s.MessageIn) -> Message:
    if body.deliver_at is not None:
        raise InvalidRequest(
            "deliverAt is not supported by hookline yet", loc=("body", "deliverAt")
        )
    now = svc.clock()
    return Message(
        id=ids.new_id(ids.MESSAGE),
        app_id=app.id,
        event_type=body.event_type,
        event_id=body.event_id,
        payload=orjson.dumps(body.payload),
        channels=tuple(body.channels) if body.channels else None,
        tags=tuple(body.tags) if body.tags else None,
        timestamp=now,
        expires_at=now + _retention(body),
    )


async def create_message(svc: Services, request: Request) -> Response:
    body = params.body(s.MessageIn, request)
    app = await _application_for_publish(svc, request, body)
    msg = build_message(svc, app, body)
    with_content = params.query_bool(request, "with_content", default=True)
    response = json_response(202, serialize.message_wire(msg, with_content))
    completion = None
    if request.idempotency is not None:
        scope, key = request.idempotency
        completion = IdempotencyCompletion(scope, key, response.status, replay_record(response))
    await svc.store.publish([msg], svc.clock(), completion=completion)
    request.idempotency_done = completion is not None
    return response


async def list_messages(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    with_content = params.query_bool(request, "with_content", default=True)
    found = await svc.store.list_messages(
        app.id, params.list_query(request, True), params.message_filter(request)
    )
    return json_response(
        200, serialize.page(found, lambda m: serialize.message_wire(m, with_content))
    )


async def get_message(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    with_content = params.query_bool(request, "with_content", default=True)
    return json_response(200, serialize.message_wire(msg, with_content))


async def expunge_content(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    msg = await resolve.message(svc, request, app)
    await svc.store.expunge_message_content(app.id, msg.id)
    return empty_response(204)


async def send_example(svc: Services, request: Request) -> Response:
    """Publish the event type's first schema example (or a stub) to this one endpoint."""
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    body = params.body(s.EventExampleIn, request)
    event_type = await svc.store.get_event_type(body.event_type)
    if event_type is None:
        raise InvalidRequest(f"Unknown event type: {body.event_type}", loc=("body", "eventType"))
    payload = _example_payload(event_type.schemas, body.example_index) or {
        "type": event_type.name,
        "example": True,
    }
    msg = build_message(svc, app, s.MessageIn(event_type=event_type.name, payload=payload))
    await svc.store.publish([msg], svc.clock(), only_endpoint=endpoint.id)
    return json_response(202, serialize.message_wire(msg))


def _example_payload(schemas: dict[str, Any] | None, index: int) -> dict[str, Any] | None:
    for schema in (schemas or {}).values():
        examples = schema.get("examples") if isinstance(schema, dict) else None
        if (
            isinstance(examples, list)
            and len(examples) > index
            and isinstance(examples[index], dict)
        ):
            return dict(examples[index])
    return None


MSG = "/api/v1/app/{app_id}/msg/{msg_id}"
ROUTES = [
    Route(
        "GET",
        "/api/v1/app/{app_id}/msg",
        list_messages,
        "List messages",
        "Message",
        response=s.MessageOut,
        query=("limit", "iterator", "event_types", "channel", "before", "after", "with_content"),
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/msg",
        create_message,
        "Publish a message",
        "Message",
        body=s.MessageIn,
        response=s.MessageOut,
        status=202,
        query=("with_content",),
    ),
    Route(
        "GET",
        MSG,
        get_message,
        "Get a message",
        "Message",
        response=s.MessageOut,
        query=("with_content",),
    ),
    Route(
        "DELETE",
        MSG + "/content",
        expunge_content,
        "Delete a message's payload",
        "Message",
        status=204,
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
        send_example,
        "Send an example message to one endpoint",
        "Endpoint",
        body=s.EventExampleIn,
        response=s.MessageOut,
        status=202,
    ),
]
