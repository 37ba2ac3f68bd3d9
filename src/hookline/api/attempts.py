"""Attempt logs and manual resends: what happened to each (message, endpoint) pair."""

from __future__ import annotations

from dataclasses import replace

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.http import (
    Access,
    Request,
    Response,
    Route,
    empty_response,
    json_response,
    model_response,
)
from hookline.domain.capabilities import Capability
from hookline.domain.models import Attempt, Message
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
    "tag",
    "before",
    "after",
    "with_content",
    "expanded_statuses",
)


def _attempt_filter(request: Request, endpoint_id: str | None) -> AttemptFilter:
    code_class = request.query_one("status_code_class")
    if code_class not in (None, "") and code_class not in {str(c) for c in STATUS_CLASSES}:
        raise params.QueryError("status_code_class", "must be one of 0, 100, 200, 300, 400, 500")
    base = params.message_filter(request)
    params.expanded_statuses(request)
    return AttemptFilter(
        status=params.query_status(request),
        status_code_class=int(code_class) if code_class else None,
        event_types=base.event_types,
        channel=base.channel,
        tag=base.tag,
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
    with_content = params.query_bool(request, "with_content", default=True)
    msgs: dict[str, Message] = {}
    if params.query_bool(request, "with_msg"):
        msgs = await attempts.messages_of(ops, request.caller, request.app_key, found.data)
    return json_response(
        200,
        serialize.page(
            found, lambda a: _attempt_json(a, with_content, msgs.get(a.msg_id), with_content)
        ),
    )


async def list_by_message(ops: Operations, request: Request) -> Response:
    found = await attempts.list_by_message(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        params.list_query(request, True),
        _attempt_filter(request, params.query_key(request, "endpoint_id")),
    )
    with_content = params.query_bool(request, "with_content", default=True)
    return json_response(200, serialize.page(found, lambda a: _attempt_json(a, with_content)))


def _attempt_json(
    attempt: Attempt,
    with_content: bool,
    msg: Message | None = None,
    msg_content: bool = True,
) -> object:
    """``with_content=false`` leaves out the response body the receiver sent."""
    if not with_content:
        attempt = replace(attempt, response="")
    return serialize.dump(serialize.attempt(attempt, msg, msg_content))


async def get_attempt(ops: Operations, request: Request) -> Response:
    params.expanded_statuses(request)
    found = await attempts.get(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        request.path_params["attempt_id"],
    )
    return model_response(200, serialize.attempt(found))


async def attempted_messages(ops: Operations, request: Request) -> Response:
    params.expanded_statuses(request)
    with_content = params.query_bool(request, "with_content", default=True)
    found = await attempts.attempted_messages(
        ops,
        request.caller,
        request.app_key,
        request.path_params["endpoint_id"],
        params.list_query(request, True),
        params.message_filter(request),
        params.query_status(request),
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


async def skip(ops: Operations, request: Request) -> Response:
    await attempts.skip(
        ops,
        request.caller,
        request.app_key,
        request.path_params["msg_id"],
        request.path_params["endpoint_id"],
    )
    return empty_response(204)


APP = "/api/v1/app/{app_id}"
ROUTES = [
    Route(
        "GET",
        APP + "/attempt/endpoint/{endpoint_id}",
        list_by_endpoint,
        "List attempts to an endpoint",
        "Message Attempt",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.MessageAttemptOut],
        query=(*FILTERS, "with_msg"),
    ),
    Route(
        "GET",
        APP + "/attempt/msg/{msg_id}",
        list_by_message,
        "List attempts of a message",
        "Message Attempt",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.MessageAttemptOut],
        query=(*FILTERS, "endpoint_id"),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/attempt/{attempt_id}",
        get_attempt,
        "Get an attempt",
        "Message Attempt",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.MessageAttemptOut,
        query=("expanded_statuses",),
    ),
    Route(
        "GET",
        APP + "/endpoint/{endpoint_id}/msg",
        attempted_messages,
        "List messages sent to an endpoint, with their delivery status",
        "Message Attempt",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.EndpointMessageOut],
        query=(
            "limit",
            "iterator",
            "event_types",
            "channel",
            "tag",
            "status",
            "before",
            "after",
            "with_content",
            "expanded_statuses",
        ),
    ),
    Route(
        "GET",
        APP + "/msg/{msg_id}/endpoint",
        attempted_destinations,
        "List endpoints a message was sent to",
        "Message Attempt",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.MessageEndpointOut],
        query=("limit", "iterator"),
    ),
    Route(
        "POST",
        APP + "/msg/{msg_id}/endpoint/{endpoint_id}/resend",
        resend,
        "Resend a message to an endpoint",
        "Message Attempt",
        Access.APP,
        capability=Capability.CREATE_ATTEMPTS,
        response=s.EmptyOut,
        status=202,
    ),
    Route(
        "POST",
        APP + "/msg/{msg_id}/endpoint/{endpoint_id}/skip",
        skip,
        "Skip a held delivery: an ordered endpoint's line moves on (hookline)",
        "Message Attempt",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        status=204,
    ),
]
