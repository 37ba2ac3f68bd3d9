"""``/api/v1/app/{app_id}/msg``: publishing, reading and expunging messages.

A publish is the hot path: parse, one call to ``operations.messages.publish`` (which
commits before it returns), and the 202 written by orjson from the stored payload.
"""

from __future__ import annotations

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.applications import new_application
from hookline.api.http import (
    Access,
    Request,
    Response,
    Route,
    empty_response,
    json_response,
    replay_record,
)
from hookline.domain.capabilities import Capability
from hookline.domain.models import Message
from hookline.domain.tracecontext import incoming
from hookline.operations import messages
from hookline.operations.context import Operations
from hookline.operations.messages import NewMessage
from hookline.storage.base import IdempotencyCompletion


def _new_message(body: s.MessageIn, request: Request) -> NewMessage:
    headers = request.headers
    return NewMessage(
        event_type=body.event_type,
        payload=body.payload,
        event_id=body.event_id,
        channels=body.channels,
        tags=body.tags,
        application=None if body.application is None else new_application(body.application),
        retention_days=body.payload_retention_period,
        retention_hours=body.payload_retention_hours,
        deliver_at=body.deliver_at,
        ordering_key=body.ordering_key,
        # Kept even with tracing off (docs/observability.md, "Traces"); a malformed one is
        # ignored, as the W3C spec says, never refused.
        trace_context=incoming(headers.get("traceparent"), headers.get("tracestate")),
    )


class _Receipt:
    """Renders the 202 once, for the idempotency record committed with the message and for
    the client alike."""

    __slots__ = ("key", "response", "scope", "with_content")

    def __init__(self, idempotency: tuple[str, str], with_content: bool) -> None:
        self.scope, self.key = idempotency
        self.with_content = with_content
        self.response: Response | None = None

    def __call__(self, msg: Message) -> IdempotencyCompletion:
        self.response = json_response(202, serialize.message_wire(msg, self.with_content))
        return IdempotencyCompletion(
            self.scope, self.key, self.response.status, replay_record(self.response)
        )


async def create_message(ops: Operations, request: Request) -> Response:
    new = _new_message(params.body(s.MessageIn, request), request)
    with_content = params.query_bool(request, "with_content", default=True)
    if request.idempotency is None:
        msg = await messages.publish(ops, request.caller, request.app_key, new)
        return json_response(202, serialize.message_wire(msg, with_content))
    receipt = _Receipt(request.idempotency, with_content)
    await messages.publish(ops, request.caller, request.app_key, new, receipt)
    request.idempotency_done = True
    assert receipt.response is not None
    return receipt.response


async def list_messages(ops: Operations, request: Request) -> Response:
    with_content = params.query_bool(request, "with_content", default=True)
    found = await messages.list_messages(
        ops,
        request.caller,
        request.app_key,
        params.list_query(request, True),
        params.message_filter(request),
    )
    return json_response(
        200, serialize.page(found, lambda m: serialize.message_wire(m, with_content))
    )


async def get_message(ops: Operations, request: Request) -> Response:
    msg = await messages.get(ops, request.caller, request.app_key, request.path_params["msg_id"])
    with_content = params.query_bool(request, "with_content", default=True)
    return json_response(200, serialize.message_wire(msg, with_content))


async def expunge_content(ops: Operations, request: Request) -> Response:
    await messages.expunge_content(
        ops, request.caller, request.app_key, request.path_params["msg_id"]
    )
    return empty_response(204)


async def send_example(ops: Operations, request: Request) -> Response:
    body = params.body(s.EventExampleIn, request)
    msg = await messages.send_example(
        ops,
        request.caller,
        request.app_key,
        request.path_params["endpoint_id"],
        body.event_type,
        body.example_index,
    )
    return json_response(202, serialize.message_wire(msg))


MSG = "/api/v1/app/{app_id}/msg/{msg_id}"
ROUTES = [
    Route(
        "GET",
        "/api/v1/app/{app_id}/msg",
        list_messages,
        "List messages",
        "Message",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.MessageOut],
        query=(
            "limit",
            "iterator",
            "event_types",
            "channel",
            "tag",
            "before",
            "after",
            "with_content",
        ),
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/msg",
        create_message,
        "Publish a message",
        "Message",
        Access.APP,
        capability=Capability.PUBLISH_MESSAGES,
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
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.MessageOut,
        query=("with_content",),
    ),
    Route(
        "DELETE",
        MSG + "/content",
        expunge_content,
        "Delete a message's payload",
        "Message",
        Access.APP,
        capability=Capability.PUBLISH_MESSAGES,
        status=204,
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example",
        send_example,
        "Send an example message to one endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.CREATE_ATTEMPTS,
        body=s.EventExampleIn,
        response=s.MessageOut,
        status=202,
    ),
]
