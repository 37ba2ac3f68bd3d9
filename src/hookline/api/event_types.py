"""``/api/v1/event-type``: the catalogue of event names endpoints can filter on."""

from __future__ import annotations

from dataclasses import replace

from hookline.api import params, serialize
from hookline.api import schemas as s
from hookline.api.app import Services
from hookline.api.http import (
    Request,
    Response,
    Route,
    empty_response,
    json_response,
    model_response,
)
from hookline.domain.errors import Conflict, NotFound
from hookline.domain.models import EventType


def _from_body(svc: Services, name: str, body: s.EventTypeUpdate) -> EventType:
    now = svc.clock()
    return EventType(
        name=name,
        description=body.description,
        archived=body.archived,
        deprecated=body.deprecated,
        schemas=body.schemas,
        group_name=body.group_name,
        feature_flags=tuple(body.feature_flags) if body.feature_flags is not None else None,
        created_at=now,
        updated_at=now,
    )


async def _existing(svc: Services, request: Request) -> EventType:
    found = await svc.store.get_event_type(request.path_params["event_type_name"])
    if found is None:
        raise NotFound("Event type not found")
    return found


async def list_event_types(svc: Services, request: Request) -> Response:
    include_archived = params.query_bool(request, "include_archived")
    with_content = params.query_bool(request, "with_content")
    found = await svc.store.list_event_types(
        params.list_query(request, default_descending=False), include_archived
    )

    def convert(et: EventType) -> object:
        out = serialize.dump(serialize.event_type(et))
        if not with_content:
            out["schemas"] = None
        return out

    return json_response(200, serialize.page(found, convert))


async def _update(svc: Services, event_type: EventType) -> None:
    """Write ``event_type`` at the version it was read at."""
    if await svc.store.update_event_type(event_type) is None:
        raise Conflict(
            "The event type was changed by another request at the same time; retry",
            code="concurrent_update",
        )


async def create_event_type(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    body = params.body(s.EventTypeIn, request)
    event_type = _from_body(svc, body.name, body)
    await svc.store.create_event_type(event_type)
    return model_response(201, serialize.event_type(event_type))


async def get_event_type(svc: Services, request: Request) -> Response:
    return model_response(200, serialize.event_type(await _existing(svc, request)))


async def upsert_event_type(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    body = params.body(s.EventTypeUpdate, request)
    name = request.path_params["event_type_name"]
    existing = await svc.store.get_event_type(name)
    fresh = _from_body(svc, name, body)
    if existing is None:
        await svc.store.create_event_type(fresh)
        return model_response(201, serialize.event_type(fresh))
    updated = replace(fresh, created_at=existing.created_at, version=existing.version)
    await _update(svc, updated)
    return model_response(200, serialize.event_type(updated))


async def patch_event_type(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    existing = await _existing(svc, request)
    changes = params.body(s.EventTypePatch, request).model_dump(exclude_unset=True)
    for required in ("description", "archived", "deprecated"):
        if changes.get(required) is None:
            changes.pop(required, None)
    if changes.get("feature_flags") is not None:
        changes["feature_flags"] = tuple(changes["feature_flags"])
    updated = replace(existing, **changes, updated_at=svc.clock())
    await _update(svc, updated)
    return model_response(200, serialize.event_type(updated))


async def delete_event_type(svc: Services, request: Request) -> Response:
    """Archive by default, as Svix does; ``?expunge=true`` removes it for good."""
    request.principal.require_admin()
    existing = await _existing(svc, request)
    if params.query_bool(request, "expunge"):
        await svc.store.delete_event_type(existing.name)
    else:
        await _update(svc, replace(existing, archived=True, updated_at=svc.clock()))
    return empty_response(204)


PATH = "/api/v1/event-type/{event_type_name}"
ROUTES = [
    Route(
        "GET",
        "/api/v1/event-type",
        list_event_types,
        "List event types",
        "Event Type",
        response=s.EventTypeOut,
        query=("limit", "iterator", "order", "include_archived", "with_content"),
    ),
    Route(
        "POST",
        "/api/v1/event-type",
        create_event_type,
        "Create an event type",
        "Event Type",
        body=s.EventTypeIn,
        response=s.EventTypeOut,
        status=201,
    ),
    Route("GET", PATH, get_event_type, "Get an event type", "Event Type", response=s.EventTypeOut),
    Route(
        "PUT",
        PATH,
        upsert_event_type,
        "Create or update an event type",
        "Event Type",
        body=s.EventTypeUpdate,
        response=s.EventTypeOut,
    ),
    Route(
        "PATCH",
        PATH,
        patch_event_type,
        "Partially update an event type",
        "Event Type",
        body=s.EventTypePatch,
        response=s.EventTypeOut,
    ),
    Route(
        "DELETE",
        PATH,
        delete_event_type,
        "Archive or expunge an event type",
        "Event Type",
        status=204,
        query=("expunge",),
    ),
]
