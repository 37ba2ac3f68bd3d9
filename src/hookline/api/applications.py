"""``/api/v1/app``: the tenants that own endpoints and messages."""

from __future__ import annotations

from dataclasses import replace

from hookline.api import params, resolve, serialize
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
from hookline.domain import ids
from hookline.domain.errors import Conflict
from hookline.domain.models import Application


def new_application(svc: Services, body: s.ApplicationIn, uid: str | None = None) -> Application:
    now = svc.clock()
    return Application(
        id=ids.new_id(ids.APP),
        name=body.name,
        uid=body.uid if body.uid is not None else uid,
        throttle_rate=body.throttle_rate,
        metadata=dict(body.metadata),
        created_at=now,
        updated_at=now,
    )


async def list_applications(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    found = await svc.store.list_applications(params.list_query(request, default_descending=False))
    return json_response(
        200, serialize.page(found, lambda a: serialize.dump(serialize.application(a)))
    )


async def create_application(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    body = params.body(s.ApplicationIn, request)
    if body.uid is not None and params.query_bool(request, "get_if_exists"):
        existing = await svc.store.get_application(body.uid)
        if existing is not None:
            return model_response(200, serialize.application(existing))
    app = new_application(svc, body)
    await svc.store.create_application(app)
    return model_response(201, serialize.application(app))


async def _update(svc: Services, app: Application) -> None:
    """Write ``app`` at the version it was read at; the cached copy goes either way, so a
    retry after the 409 reads the application as it now is."""
    stored = await svc.store.update_application(app)
    svc.applications.forget(app)
    if stored is None:
        raise Conflict(
            "The application was changed by another request at the same time; retry",
            code="concurrent_update",
        )


async def get_application(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    return model_response(200, serialize.application(app))


async def upsert_application(svc: Services, request: Request) -> Response:
    """PUT creates the application (with the path as its uid) when it does not exist."""
    request.principal.require_admin()
    body = params.body(s.ApplicationIn, request)
    existing = await svc.store.get_application(request.path_params["app_id"])
    if existing is None:
        app = new_application(svc, body, uid=request.path_params["app_id"])
        await svc.store.create_application(app)
        return model_response(201, serialize.application(app))
    updated = replace(
        existing,
        name=body.name,
        uid=body.uid if body.uid is not None else existing.uid,
        throttle_rate=body.throttle_rate,
        metadata=dict(body.metadata),
        updated_at=svc.clock(),
    )
    await _update(svc, updated)
    return model_response(200, serialize.application(updated))


async def patch_application(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    app = await resolve.application(svc, request)
    body = params.body(s.ApplicationPatch, request)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "metadata"):
        if changes.get(required) is None:
            changes.pop(required, None)
    updated = replace(app, **changes, updated_at=svc.clock())
    await _update(svc, updated)
    return model_response(200, serialize.application(updated))


async def delete_application(svc: Services, request: Request) -> Response:
    request.principal.require_admin()
    app = await resolve.application(svc, request)
    await svc.store.delete_application(app.id)
    svc.applications.forget(app)
    return empty_response(204)


ROUTES = [
    Route(
        "GET",
        "/api/v1/app",
        list_applications,
        "List applications",
        "Application",
        response=s.ApplicationOut,
        query=("limit", "iterator", "order"),
    ),
    Route(
        "POST",
        "/api/v1/app",
        create_application,
        "Create an application",
        "Application",
        body=s.ApplicationIn,
        response=s.ApplicationOut,
        status=201,
        query=("get_if_exists",),
    ),
    Route(
        "GET",
        "/api/v1/app/{app_id}",
        get_application,
        "Get an application",
        "Application",
        response=s.ApplicationOut,
    ),
    Route(
        "PUT",
        "/api/v1/app/{app_id}",
        upsert_application,
        "Create or update an application",
        "Application",
        body=s.ApplicationIn,
        response=s.ApplicationOut,
    ),
    Route(
        "PATCH",
        "/api/v1/app/{app_id}",
        patch_application,
        "Partially update an application",
        "Application",
        body=s.ApplicationPatch,
        response=s.ApplicationOut,
    ),
    Route(
        "DELETE",
        "/api/v1/app/{app_id}",
        delete_application,
        "Delete an application",
        "Application",
        status=204,
    ),
]
