"""``/api/v1/app``: the tenants that own endpoints and messages."""

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
from hookline.domain.policy import ApplicationPolicy
from hookline.operations import applications
from hookline.operations.applications import ApplicationPatch, NewApplication
from hookline.operations.context import Operations


def new_application(body: s.ApplicationIn) -> NewApplication:
    return NewApplication(
        name=body.name,
        uid=body.uid,
        throttle_rate=body.throttle_rate,
        metadata=body.metadata,
        policy=ApplicationPolicy.from_json(body.policy),
    )


async def list_applications(ops: Operations, request: Request) -> Response:
    query = params.list_query(request, default_descending=False)
    found = await applications.list_applications(
        ops,
        request.caller,
        query,
        exclude_without_endpoints=params.query_bool(request, "exclude_apps_with_no_endpoints"),
    )
    params.query_bool(request, "exclude_apps_with_svix_play_endpoints")  # validated; see ROUTES
    return json_response(
        200, serialize.page(found, lambda a: serialize.dump(serialize.application(a)))
    )


async def create_application(ops: Operations, request: Request) -> Response:
    body = params.body(s.ApplicationIn, request)
    get_if_exists = params.query_bool(request, "get_if_exists")
    app, created = await applications.create(
        ops, request.caller, new_application(body), get_if_exists=get_if_exists
    )
    return model_response(201 if created else 200, serialize.application(app))


async def get_application(ops: Operations, request: Request) -> Response:
    app = await applications.resolve(ops, request.caller, request.app_key)
    return model_response(200, serialize.application(app))


async def upsert_application(ops: Operations, request: Request) -> Response:
    body = params.body(s.ApplicationIn, request)
    app, created = await applications.upsert(
        ops, request.caller, request.app_key, new_application(body)
    )
    return model_response(201 if created else 200, serialize.application(app))


async def patch_application(ops: Operations, request: Request) -> Response:
    body = params.body(s.ApplicationPatch, request)
    given = body.model_dump(exclude_unset=True)
    if given.get("policy") is not None:
        given["policy"] = ApplicationPolicy.from_json(given["policy"])
    changes = ApplicationPatch(**given)
    app = await applications.patch(ops, request.caller, request.app_key, changes)
    return model_response(200, serialize.application(app))


async def delete_application(ops: Operations, request: Request) -> Response:
    await applications.delete(ops, request.caller, request.app_key)
    return empty_response(204)


APP = "/api/v1/app/{app_id}"
ROUTES = [
    Route(
        "GET",
        "/api/v1/app",
        list_applications,
        "List applications",
        "Application",
        Access.ADMIN,
        response=s.ListResponse[s.ApplicationOut],
        # hookline has no Svix Play endpoints, so excluding applications that have one
        # excludes none: the parameter is honoured by changing nothing.
        query=(
            "limit",
            "iterator",
            "order",
            "exclude_apps_with_no_endpoints",
            "exclude_apps_with_svix_play_endpoints",
        ),
    ),
    Route(
        "POST",
        "/api/v1/app",
        create_application,
        "Create an application",
        "Application",
        Access.ADMIN,
        body=s.ApplicationIn,
        response=s.ApplicationOut,
        status=201,
        query=("get_if_exists",),
    ),
    Route(
        "GET",
        APP,
        get_application,
        "Get an application",
        "Application",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ApplicationOut,
    ),
    Route(
        "PUT",
        APP,
        upsert_application,
        "Create or update an application",
        "Application",
        Access.ADMIN,
        body=s.ApplicationIn,
        response=s.ApplicationOut,
    ),
    Route(
        "PATCH",
        APP,
        patch_application,
        "Partially update an application",
        "Application",
        Access.ADMIN,
        body=s.ApplicationPatch,
        response=s.ApplicationOut,
    ),
    Route(
        "DELETE",
        APP,
        delete_application,
        "Delete an application",
        "Application",
        Access.ADMIN,
        status=204,
    ),
]
