"""``/api/v1/app/{app_id}/endpoint``: where messages go, and how they are signed."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

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
from hookline.domain.errors import Conflict, InvalidRequest
from hookline.domain.headers import InvalidHeader, merge_headers, normalize_headers, redacted
from hookline.domain.models import Application, Endpoint, SigningKey
from hookline.domain.signing import InvalidSecret, generate_secret, normalize_secret

EP = "/api/v1/app/{app_id}/endpoint/{endpoint_id}"


async def _check_event_types(svc: Services, names: Sequence[str] | None) -> tuple[str, ...] | None:
    """A filter naming an unknown event type would silently receive nothing: refuse it."""
    if not names:
        return None
    missing = await svc.store.missing_event_types(list(names))
    if missing:
        raise InvalidRequest(
            f"Unknown event type(s): {', '.join(missing)}; create them first with "
            "POST /api/v1/event-type",
            loc=("body", "filterTypes"),
        )
    return tuple(dict.fromkeys(names))


async def _update(svc: Services, endpoint: Endpoint) -> None:
    """Write ``endpoint`` at the version it was read at: a change made meanwhile, by
    another request or by the worker disabling it on 410 Gone, is never overwritten."""
    if await svc.store.update_endpoint(endpoint) is None:
        raise Conflict(
            "The endpoint was changed by another request at the same time; retry",
            code="concurrent_update",
        )


def _secret(value: str | None) -> str:
    if value is None:
        return generate_secret()
    try:
        return normalize_secret(value)
    except InvalidSecret as exc:
        raise InvalidRequest(str(exc), loc=("body", "secret")) from exc


def _headers(value: dict[str, str] | None, field: str = "headers") -> dict[str, str]:
    try:
        return normalize_headers(value or {})
    except InvalidHeader as exc:
        raise InvalidRequest(str(exc), loc=("body", field)) from exc


async def _new_endpoint(
    svc: Services, app: Application, body: s.EndpointUpdate, uid: str | None = None
) -> Endpoint:
    now = svc.clock()
    secret = body.secret if isinstance(body, s.EndpointIn) else None
    headers = body.headers if isinstance(body, s.EndpointIn) else None
    return Endpoint(
        id=ids.new_id(ids.ENDPOINT),
        app_id=app.id,
        url=body.url,
        uid=body.uid if body.uid is not None else uid,
        description=body.description,
        throttle_rate=body.throttle_rate,
        disabled=body.disabled,
        event_types=await _check_event_types(svc, body.event_types),
        channels=tuple(body.channels) if body.channels else None,
        metadata=dict(body.metadata),
        headers=_headers(headers),
        keys=(SigningKey(_secret(secret)),),
        created_at=now,
        updated_at=now,
    )


async def list_endpoints(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    found = await svc.store.list_endpoints(app.id, params.list_query(request, False))
    return json_response(
        200, serialize.page(found, lambda e: serialize.dump(serialize.endpoint(e)))
    )


async def create_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    body = params.body(s.EndpointIn, request)
    endpoint = await _new_endpoint(svc, app, body)
    await svc.store.create_endpoint(endpoint)
    return model_response(201, serialize.endpoint(endpoint))


async def get_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    return model_response(200, serialize.endpoint(await resolve.endpoint(svc, request, app)))


async def upsert_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    body = params.body(s.EndpointUpdate, request)
    existing = await svc.store.get_endpoint(app.id, request.path_params["endpoint_id"])
    if existing is None:
        endpoint = await _new_endpoint(svc, app, body, uid=request.path_params["endpoint_id"])
        await svc.store.create_endpoint(endpoint)
        return model_response(201, serialize.endpoint(endpoint))
    updated = replace(
        existing,
        url=body.url,
        uid=body.uid if body.uid is not None else existing.uid,
        description=body.description,
        throttle_rate=body.throttle_rate,
        disabled=body.disabled,
        event_types=await _check_event_types(svc, body.event_types),
        channels=tuple(body.channels) if body.channels else None,
        metadata=dict(body.metadata),
        updated_at=svc.clock(),
    )
    await _update(svc, updated)
    return model_response(200, serialize.endpoint(updated))


async def patch_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    existing = await resolve.endpoint(svc, request, app)
    changes = params.body(s.EndpointPatch, request).model_dump(exclude_unset=True)
    for required in ("url", "description", "disabled", "metadata"):
        if changes.get(required) is None:
            changes.pop(required, None)
    if "event_types" in changes:
        changes["event_types"] = await _check_event_types(svc, changes["event_types"])
    if "channels" in changes:
        changes["channels"] = tuple(changes["channels"]) if changes["channels"] else None
    updated = replace(existing, **changes, updated_at=svc.clock())
    await _update(svc, updated)
    return model_response(200, serialize.endpoint(updated))


async def delete_endpoint(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    await svc.store.delete_endpoint(app.id, endpoint.id)
    return empty_response(204)


async def get_secret(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    return model_response(200, s.EndpointSecretOut(key=endpoint.current_key.secret))


async def rotate_secret(svc: Services, request: Request) -> Response:
    """The new key signs at once; the old one keeps signing for the grace period.

    Receivers that still hold the old secret keep verifying during the rollover, because
    Standard Webhooks sends one signature per valid key.
    """
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    body = params.body(s.EndpointSecretRotateIn, request, optional=True)
    now = svc.clock()
    expiry = now + timedelta(seconds=body.grace_period_seconds)
    retiring = [
        SigningKey(k.secret, min(k.expires_at or expiry, expiry))
        for k in endpoint.keys
        if k.valid_at(now)
    ]
    new_key = SigningKey(_secret(body.key))
    keys = (new_key, *[k for k in retiring if k.valid_at(now)])
    await _update(svc, replace(endpoint, keys=keys, updated_at=now))
    return model_response(200, s.EndpointSecretOut(key=new_key.secret))


async def get_headers(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    shown, hidden = redacted(endpoint.headers)
    return model_response(200, s.EndpointHeadersOut(headers=shown, sensitive=hidden))


async def set_headers(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    body = params.body(s.EndpointHeadersIn, request)
    headers = _headers(body.headers)
    await _update(svc, replace(endpoint, headers=headers, updated_at=svc.clock()))
    return empty_response(204)


async def patch_headers(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    body = params.body(s.EndpointHeadersPatchIn, request)
    try:
        headers = merge_headers(endpoint.headers, body.headers, body.delete_headers or [])
    except InvalidHeader as exc:
        raise InvalidRequest(str(exc), loc=("body", "headers")) from exc
    await _update(svc, replace(endpoint, headers=headers, updated_at=svc.clock()))
    return empty_response(204)


async def get_stats(svc: Services, request: Request) -> Response:
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    return model_response(200, serialize.stats(await svc.store.endpoint_stats(app.id, endpoint.id)))


async def recover(svc: Services, request: Request) -> Response:
    """Re-queue this endpoint's failed deliveries of messages created in [since, until)."""
    app = await resolve.application(svc, request)
    endpoint = await resolve.endpoint(svc, request, app)
    body = params.body(s.RecoverIn, request)
    now = svc.clock()
    until = body.until or now
    if body.since >= until:
        raise InvalidRequest("'since' must be earlier than 'until'", loc=("body", "since"))
    count = await svc.store.recover(app.id, endpoint.id, body.since, until, now)
    svc.on_publish()
    out = s.RecoverOut(
        id=ids.new_id(ids.TASK), status="finished", task="endpoint.recover", updated_at=now
    )
    return json_response(202, {**serialize.dump(out), "data": {"messagesSent": count}})


ROUTES = [
    Route(
        "GET",
        "/api/v1/app/{app_id}/endpoint",
        list_endpoints,
        "List endpoints",
        "Endpoint",
        response=s.EndpointOut,
        query=("limit", "iterator", "order"),
    ),
    Route(
        "POST",
        "/api/v1/app/{app_id}/endpoint",
        create_endpoint,
        "Create an endpoint",
        "Endpoint",
        body=s.EndpointIn,
        response=s.EndpointOut,
        status=201,
    ),
    Route("GET", EP, get_endpoint, "Get an endpoint", "Endpoint", response=s.EndpointOut),
    Route(
        "PUT",
        EP,
        upsert_endpoint,
        "Create or update an endpoint",
        "Endpoint",
        body=s.EndpointUpdate,
        response=s.EndpointOut,
    ),
    Route(
        "PATCH",
        EP,
        patch_endpoint,
        "Partially update an endpoint",
        "Endpoint",
        body=s.EndpointPatch,
        response=s.EndpointOut,
    ),
    Route("DELETE", EP, delete_endpoint, "Delete an endpoint", "Endpoint", status=204),
    Route(
        "GET",
        EP + "/secret",
        get_secret,
        "Get the endpoint's signing secret",
        "Endpoint",
        response=s.EndpointSecretOut,
    ),
    Route(
        "POST",
        EP + "/secret/rotate",
        rotate_secret,
        "Rotate the signing secret",
        "Endpoint",
        body=s.EndpointSecretRotateIn,
        response=s.EndpointSecretOut,
    ),
    Route(
        "GET",
        EP + "/headers",
        get_headers,
        "Get custom headers",
        "Endpoint",
        response=s.EndpointHeadersOut,
    ),
    Route(
        "PUT",
        EP + "/headers",
        set_headers,
        "Replace custom headers",
        "Endpoint",
        body=s.EndpointHeadersIn,
        status=204,
    ),
    Route(
        "PATCH",
        EP + "/headers",
        patch_headers,
        "Update custom headers",
        "Endpoint",
        body=s.EndpointHeadersPatchIn,
        status=204,
    ),
    Route(
        "GET",
        EP + "/stats",
        get_stats,
        "Delivery counts by status",
        "Endpoint",
        response=s.EndpointStatsOut,
    ),
    Route(
        "POST",
        EP + "/recover",
        recover,
        "Resend failed deliveries in a time range",
        "Endpoint",
        body=s.RecoverIn,
        response=s.RecoverOut,
        status=202,
    ),
]
