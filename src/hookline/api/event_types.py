"""``/api/v1/event-type``: the catalogue of event names endpoints can filter on."""

from __future__ import annotations

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
from hookline.domain.models import EventType
from hookline.operations import event_types
from hookline.operations.context import Operations
from hookline.operations.event_types import EventTypeFields, EventTypePatch


def _fields(body: s.EventTypeUpdate) -> EventTypeFields:
    return EventTypeFields(
        description=body.description,
        archived=body.archived,
        deprecated=body.deprecated,
        schemas=body.schemas,
        group_name=body.group_name,
        feature_flags=body.feature_flags,
    )


def _name(request: Request) -> str:
    return request.path_params["event_type_name"]


async def list_event_types(ops: Operations, request: Request) -> Response:
    include_archived = params.query_bool(request, "include_archived")
    with_content = params.query_bool(request, "with_content")
    found = await event_types.list_event_types(
        ops,
        request.caller,
        params.list_query(request, default_descending=False),
        include_archived=include_archived,
    )

    def convert(et: EventType) -> object:
        out = serialize.dump(serialize.event_type(et))
        if not with_content:
            out["schemas"] = None
        return out

    return json_response(200, serialize.page(found, convert))


async def create_event_type(ops: Operations, request: Request) -> Response:
    body = params.body(s.EventTypeIn, request)
    created = await event_types.create(ops, request.caller, body.name, _fields(body))
    return model_response(201, serialize.event_type(created))


async def get_event_type(ops: Operations, request: Request) -> Response:
    found = await event_types.get(ops, request.caller, _name(request))
    return model_response(200, serialize.event_type(found))


async def upsert_event_type(ops: Operations, request: Request) -> Response:
    body = params.body(s.EventTypeUpdate, request)
    stored, created = await event_types.upsert(ops, request.caller, _name(request), _fields(body))
    return model_response(201 if created else 200, serialize.event_type(stored))


async def patch_event_type(ops: Operations, request: Request) -> Response:
    body = params.body(s.EventTypePatch, request)
    changes = EventTypePatch(**body.model_dump(exclude_unset=True))
    updated = await event_types.patch(ops, request.caller, _name(request), changes)
    return model_response(200, serialize.event_type(updated))


async def delete_event_type(ops: Operations, request: Request) -> Response:
    """Archive by default, as Svix does; ``?expunge=true`` removes it for good."""
    expunge = params.query_bool(request, "expunge")
    await event_types.delete(ops, request.caller, _name(request), expunge=expunge)
    return empty_response(204)


PATH = "/api/v1/event-type/{event_type_name}"
ROUTES = [
    Route(
        "GET",
        "/api/v1/event-type",
        list_event_types,
        "List event types",
        "Event Type",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.EventTypeOut],
        query=("limit", "iterator", "order", "include_archived", "with_content"),
    ),
    Route(
        "POST",
        "/api/v1/event-type",
        create_event_type,
        "Create an event type",
        "Event Type",
        Access.ADMIN,
        body=s.EventTypeIn,
        response=s.EventTypeOut,
        status=201,
    ),
    Route(
        "GET",
        PATH,
        get_event_type,
        "Get an event type",
        "Event Type",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.EventTypeOut,
    ),
    Route(
        "PUT",
        PATH,
        upsert_event_type,
        "Create or update an event type",
        "Event Type",
        Access.ADMIN,
        body=s.EventTypeUpdate,
        response=s.EventTypeOut,
    ),
    Route(
        "PATCH",
        PATH,
        patch_event_type,
        "Partially update an event type",
        "Event Type",
        Access.ADMIN,
        body=s.EventTypePatch,
        response=s.EventTypeOut,
    ),
    Route(
        "DELETE",
        PATH,
        delete_event_type,
        "Archive or expunge an event type",
        "Event Type",
        Access.ADMIN,
        status=204,
        query=("expunge",),
    ),
]
