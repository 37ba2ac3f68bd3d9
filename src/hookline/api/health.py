"""Health checks for load balancers and orchestrators; no token needed."""

from __future__ import annotations

from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.domain.errors import Unavailable
from hookline.operations.context import Operations


async def health(ops: Operations, request: Request) -> Response:
    """200 when the database answers, 503 otherwise: a replica that cannot commit is not healthy."""
    try:
        await ops.store.ping()
    except Unavailable as exc:
        return json_response(
            503, {"status": "unavailable", "database": "down", "detail": exc.detail}
        )
    return json_response(200, {"status": "ok", "database": "ok"})


async def ping(ops: Operations, request: Request) -> Response:
    return json_response(200, {"status": "ok"})


ROUTES = [
    Route(
        "GET",
        "/health",
        health,
        "Health, including the database",
        "Health",
        Access.PUBLIC,
        response=s.HealthOut,
    ),
    Route(
        "GET",
        "/health/ping",
        ping,
        "Liveness: the process answers",
        "Health",
        Access.PUBLIC,
        response=s.PingOut,
    ),
    Route(
        "GET",
        "/api/v1/health/ping",
        ping,
        "Liveness: the process answers (Svix's path)",
        "Health",
        Access.PUBLIC,
        response=s.PingOut,
    ),
    Route(
        "GET",
        "/api/v1/health",
        health,
        "Health, including the database",
        "Health",
        Access.PUBLIC,
        response=s.HealthOut,
    ),
]
