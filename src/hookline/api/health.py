"""Health checks for load balancers and orchestrators; no token needed."""

from __future__ import annotations

from hookline.api import schemas as s
from hookline.api.app import Services
from hookline.api.http import Request, Response, Route, json_response
from hookline.domain.errors import Unavailable


async def health(svc: Services, request: Request) -> Response:
    """200 when the database answers, 503 otherwise: a replica that cannot commit is not healthy."""
    try:
        await svc.store.ping()
    except Unavailable as exc:
        return json_response(
            503, {"status": "unavailable", "database": "down", "detail": exc.detail}
        )
    return json_response(200, {"status": "ok", "database": "ok"})


async def ping(svc: Services, request: Request) -> Response:
    return json_response(200, {"status": "ok"})


ROUTES = [
    Route(
        "GET",
        "/health",
        health,
        "Health, including the database",
        "Health",
        response=s.HealthOut,
        public=True,
    ),
    Route("GET", "/health/ping", ping, "Liveness: the process answers", "Health", public=True),
    Route(
        "GET",
        "/api/v1/health/ping",
        ping,
        "Liveness: the process answers (Svix's path)",
        "Health",
        public=True,
    ),
    Route(
        "GET",
        "/api/v1/health",
        health,
        "Health, including the database",
        "Health",
        response=s.HealthOut,
        public=True,
    ),
]
