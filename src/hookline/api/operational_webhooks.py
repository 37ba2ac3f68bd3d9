"""``/api/v1/operational-webhook/endpoint``: the operator's endpoints for hookline's own
events (Svix's operational webhooks). Admin tokens only."""

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
from hookline.operations import operational_webhooks as opw
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields

BASE = "/api/v1/operational-webhook/endpoint"
EP = BASE + "/{endpoint_id}"
TAG = "Operational Webhook Endpoint"


def _fields(body: s.OperationalEndpointUpdate) -> EndpointFields:
    given = body if isinstance(body, s.OperationalEndpointIn) else None
    return EndpointFields(
        url=body.url,
        description=body.description,
        throttle_rate=body.throttle_rate,
        uid=body.uid,
        disabled=body.disabled,
        event_types=body.event_types,
        metadata=body.metadata,
        secret=None if given is None else given.secret,
        headers=None if given is None else given.headers,
    )


def _key(request: Request) -> str:
    return request.path_params["endpoint_id"]


async def list_endpoints(ops: Operations, request: Request) -> Response:
    query = params.list_query(request, False)
    found = await opw.list_endpoints(ops, request.caller, query)
    return json_response(
        200, serialize.page(found, lambda e: serialize.dump(serialize.endpoint(e)))
    )


async def create_endpoint(ops: Operations, request: Request) -> Response:
    body = params.body(s.OperationalEndpointIn, request)
    created = await opw.create(ops, request.caller, _fields(body))
    return model_response(201, serialize.endpoint(created))


async def get_endpoint(ops: Operations, request: Request) -> Response:
    found = await opw.get(ops, request.caller, _key(request))
    return model_response(200, serialize.endpoint(found))


async def upsert_endpoint(ops: Operations, request: Request) -> Response:
    body = params.body(s.OperationalEndpointUpdate, request)
    stored, created = await opw.upsert(ops, request.caller, _key(request), _fields(body))
    return model_response(201 if created else 200, serialize.endpoint(stored))


async def delete_endpoint(ops: Operations, request: Request) -> Response:
    await opw.delete(ops, request.caller, _key(request))
    return empty_response(204)


async def get_secret(ops: Operations, request: Request) -> Response:
    key = await opw.secret(ops, request.caller, _key(request))
    return model_response(200, s.EndpointSecretOut(key=key))


async def rotate_secret(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointSecretRotateIn, request, optional=True)
    key = await opw.rotate_secret(
        ops, request.caller, _key(request), body.key, body.grace_period_seconds
    )
    return model_response(200, s.EndpointSecretOut(key=key))


async def get_headers(ops: Operations, request: Request) -> Response:
    shown, hidden = await opw.headers(ops, request.caller, _key(request))
    return model_response(200, s.EndpointHeadersOut(headers=shown, sensitive=hidden))


async def set_headers(ops: Operations, request: Request) -> Response:
    body = params.body(s.EndpointHeadersIn, request)
    await opw.set_headers(ops, request.caller, _key(request), body.headers)
    return empty_response(204)


ROUTES = [
    Route(
        "GET",
        BASE,
        list_endpoints,
        "List operational webhook endpoints",
        TAG,
        Access.ADMIN,
        response=s.ListResponse[s.EndpointOut],
        query=("limit", "iterator", "order"),
    ),
    Route(
        "POST",
        BASE,
        create_endpoint,
        "Create an operational webhook endpoint",
        TAG,
        Access.ADMIN,
        body=s.OperationalEndpointIn,
        response=s.EndpointOut,
        status=201,
    ),
    Route(
        "GET",
        EP,
        get_endpoint,
        "Get an operational webhook endpoint",
        TAG,
        Access.ADMIN,
        response=s.EndpointOut,
    ),
    Route(
        "PUT",
        EP,
        upsert_endpoint,
        "Create or update an operational webhook endpoint",
        TAG,
        Access.ADMIN,
        body=s.OperationalEndpointUpdate,
        response=s.EndpointOut,
    ),
    Route(
        "DELETE",
        EP,
        delete_endpoint,
        "Delete an operational webhook endpoint",
        TAG,
        Access.ADMIN,
        status=204,
    ),
    Route(
        "GET",
        EP + "/secret",
        get_secret,
        "Get an operational webhook endpoint's signing secret",
        TAG,
        Access.ADMIN,
        response=s.EndpointSecretOut,
    ),
    Route(
        "POST",
        EP + "/secret/rotate",
        rotate_secret,
        "Rotate an operational webhook endpoint's signing secret",
        TAG,
        Access.ADMIN,
        body=s.EndpointSecretRotateIn,
        response=s.EndpointSecretOut,
    ),
    Route(
        "GET",
        EP + "/headers",
        get_headers,
        "Get an operational webhook endpoint's custom headers",
        TAG,
        Access.ADMIN,
        response=s.EndpointHeadersOut,
    ),
    Route(
        "PUT",
        EP + "/headers",
        set_headers,
        "Replace an operational webhook endpoint's custom headers",
        TAG,
        Access.ADMIN,
        body=s.EndpointHeadersIn,
        status=204,
    ),
]
