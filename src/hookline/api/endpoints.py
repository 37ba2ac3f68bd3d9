"""``/api/v1/app/{app_id}/endpoint``: where messages go, and how they are signed."""

from __future__ import annotations

from datetime import timedelta

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
from hookline.domain.breaker import CLOSED_VIEW
from hookline.domain.capabilities import Capability
from hookline.domain.policy import EndpointPolicy
from hookline.operations import endpoints, statistics
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields, EndpointPatch, HeadersPatch

EP = "/api/v1/app/{app_id}/endpoint/{endpoint_id}"


def _fields(body: s.EndpointUpdate) -> EndpointFields:
    given = body if isinstance(body, s.EndpointIn) else None
    return EndpointFields(
        url=body.url,
        description=body.description,
        throttle_rate=body.throttle_rate,
        uid=body.uid,
        disabled=body.disabled,
        event_types=body.event_types,
        channels=body.channels,
        metadata=body.metadata,
        secret=None if given is None else given.secret,
        headers=None if given is None else given.headers,
        policy=EndpointPolicy.from_json(body.policy),
    )


def _key(request: Request) -> str:
    return request.path_params["endpoint_id"]


async def list_endpoints(ops: Operations, request: Request) -> Response:
    query = params.list_query(request, False)
    found = await endpoints.list_shown(ops, request.caller, request.app_key, query)
    return json_response(
        200,
        serialize.page(
            found,
            lambda pair: serialize.dump(serialize.endpoint(pair[0], pair[1], ops.disable_after)),
        ),
    )


async def create_endpoint(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointIn, request)
    created = await endpoints.create(ops, request.caller, request.app_key, _fields(body))
    return model_response(201, serialize.endpoint(created, CLOSED_VIEW, ops.disable_after))


async def get_endpoint(ops: Operations, request: Request) -> Response:
    found, circuit = await endpoints.show(ops, request.caller, request.app_key, _key(request))
    return model_response(200, serialize.endpoint(found, circuit, ops.disable_after))


async def upsert_endpoint(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointUpdate, request)
    stored, created = await endpoints.upsert(
        ops, request.caller, request.app_key, _key(request), _fields(body)
    )
    return model_response(
        201 if created else 200, serialize.endpoint(stored, None, ops.disable_after)
    )


async def patch_endpoint(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointPatch, request)
    given = body.model_dump(exclude_unset=True)
    if given.get("policy") is not None:
        given["policy"] = EndpointPolicy.from_json(given["policy"])
    changes = EndpointPatch(**given)
    updated = await endpoints.patch(ops, request.caller, request.app_key, _key(request), changes)
    return model_response(200, serialize.endpoint(updated, None, ops.disable_after))


async def delete_endpoint(ops: Operations, request: Request) -> Response:
    await endpoints.delete(ops, request.caller, request.app_key, _key(request))
    return empty_response(204)


async def get_secret(ops: Operations, request: Request) -> Response:
    key = await endpoints.secret(ops, request.caller, request.app_key, _key(request))
    return model_response(200, s.EndpointSecretOut(key=key))


async def rotate_secret(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointSecretRotateIn, request, optional=True)
    key = await endpoints.rotate_secret(
        ops,
        request.caller,
        request.app_key,
        _key(request),
        body.key,
        timedelta(seconds=body.grace_period_seconds),
    )
    return model_response(200, s.EndpointSecretOut(key=key))


async def get_headers(ops: Operations, request: Request) -> Response:
    shown, hidden = await endpoints.headers(ops, request.caller, request.app_key, _key(request))
    return model_response(200, s.EndpointHeadersOut(headers=shown, sensitive=hidden))


async def set_headers(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointHeadersIn, request)
    await endpoints.set_headers(ops, request.caller, request.app_key, _key(request), body.headers)
    return empty_response(204)


async def patch_headers(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointHeadersPatchIn, request)
    changes = HeadersPatch(headers=body.headers, delete=tuple(body.delete_headers or ()))
    await endpoints.update_headers(ops, request.caller, request.app_key, _key(request), changes)
    return empty_response(204)


async def get_stats(ops: Operations, request: Request) -> Response:
    since = params.query_datetime(request, "since")
    until = params.query_datetime(request, "until")
    found = await endpoints.stats(ops, request.caller, request.app_key, _key(request), since, until)
    return model_response(200, serialize.stats(found))


async def get_attempt_stats(ops: Operations, request: Request) -> Response:
    since = params.query_datetime(request, "since")
    until = params.query_datetime(request, "until")
    found = await statistics.attempt_stats(
        ops, request.caller, request.app_key, _key(request), since, until
    )
    return model_response(200, serialize.attempt_stats(found))


ROUTES = [
    Route(
        "GET",
        "/api/v1/app/{app_id}/endpoint",
        list_endpoints,
        "List endpoints",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.ListResponse[s.EndpointOut],
        query=("limit", "iterator", "order"),
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/endpoint",
        create_endpoint,
        "Create an endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        body=s.EndpointIn,
        response=s.EndpointOut,
        status=201,
    ),
    Route(
        "GET",
        EP,
        get_endpoint,
        "Get an endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.EndpointOut,
    ),
    Route(
        "PUT",
        EP,
        upsert_endpoint,
        "Create or update an endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        body=s.EndpointUpdate,
        response=s.EndpointOut,
    ),
    Route(
        "PATCH",
        EP,
        patch_endpoint,
        "Partially update an endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        body=s.EndpointPatch,
        response=s.EndpointOut,
    ),
    Route(
        "DELETE",
        EP,
        delete_endpoint,
        "Delete an endpoint",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        status=204,
    ),
    Route(
        "GET",
        EP + "/secret",
        get_secret,
        "Get the endpoint's signing secret",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_ENDPOINT_SECRET,
        response=s.EndpointSecretOut,
    ),
    Route(
        "POST",
        EP + "/secret/rotate",
        rotate_secret,
        "Rotate the signing secret",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT_SECRET,
        body=s.EndpointSecretRotateIn,
        response=s.EndpointSecretOut,
    ),
    Route(
        "GET",
        EP + "/headers",
        get_headers,
        "Get custom headers",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_ENDPOINT_SECRET,
        response=s.EndpointHeadersOut,
    ),
    Route(
        "PUT",
        EP + "/headers",
        set_headers,
        "Replace custom headers",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        body=s.EndpointHeadersIn,
        status=204,
    ),
    Route(
        "PATCH",
        EP + "/headers",
        patch_headers,
        "Update custom headers",
        "Endpoint",
        Access.APP,
        capability=Capability.MANAGE_ENDPOINT,
        body=s.EndpointHeadersPatchIn,
        status=204,
    ),
    Route(
        "GET",
        EP + "/stats",
        get_stats,
        "Delivery counts by status",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.EndpointStatsOut,
        query=("since", "until"),
    ),
    Route(
        "GET",
        EP + "/attempt-stats",
        get_attempt_stats,
        "Attempt counts by outcome, from the rollups",
        "Endpoint",
        Access.APP,
        capability=Capability.VIEW_BASE,
        response=s.EndpointAttemptStatsOut,
        query=("since", "until"),
    ),
]
