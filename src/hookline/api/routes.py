"""The whole route table: implemented operations first, then Svix's others as 501."""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

from hookline.api import (
    anomalies,
    applications,
    attempts,
    audit,
    backlog,
    deliveries,
    endpoint_auth,
    endpoints,
    event_types,
    failure_groups,
    health,
    messages,
    metrics,
    openapi,
    operational_webhooks,
    portal,
    statistics,
    tasks,
    tokens,
)
from hookline.api.app import HooklineApp, Services
from hookline.api.errors import NotImplementedRoute
from hookline.api.http import Access, Request, Response, Route
from hookline.domain.capabilities import Capability
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.operations.context import Operations
from hookline.web import PREFIXES as PAGE_PREFIXES
from hookline.web import ROOTS as PAGE_ROOTS
from hookline.web import create_web_app


async def not_implemented(ops: Operations, request: Request) -> Response:
    raise NotImplementedRoute(
        f"{request.method} {request.path} is part of the Svix API but not implemented by "
        "hookline yet; see docs/api-compatibility.md"
    )


def svix_routes() -> list[tuple[str, str]]:
    text = resources.files("hookline.api").joinpath("svix_routes.txt").read_text()
    pairs = [line.split(" ", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return [(method, path) for method, path in pairs]


def _stub_capability(method: str, path: str) -> Capability:
    """What a scoped token needs on a route hookline does not implement (it answers 501
    either way; the declaration keeps a token without the right from learning even that)."""
    if method == "GET":
        return Capability.VIEW_BASE
    if "transformation" in path:
        return Capability.MANAGE_TRANSFORMATIONS
    return Capability.MANAGE_ENDPOINT


def all_routes(exposition: Callable[[], bytes] | None = None) -> list[Route]:
    """Every route; ``exposition`` renders ``/metrics`` (None: metrics are off)."""
    implemented = [
        *health.ROUTES,
        *metrics.routes(exposition),
        *anomalies.ROUTES,
        *backlog.ROUTES,
        *portal.ROUTES,
        *applications.ROUTES,
        *event_types.ROUTES,
        *endpoints.ROUTES,
        *endpoint_auth.ROUTES,
        *messages.ROUTES,
        *attempts.ROUTES,
        *operational_webhooks.ROUTES,
        *tasks.ROUTES,
        *failure_groups.ROUTES,
        *statistics.ROUTES,
        *tokens.ROUTES,
        *audit.ROUTES,
        *deliveries.ROUTES,
    ]
    known = {(r.method, r.path) for r in implemented}
    missing = [
        Route(
            method,
            path,
            not_implemented,
            "Not implemented by hookline",
            "Not implemented",
            Access.APP,
            implemented=False,
            capability=_stub_capability(method, path),
        )
        for method, path in svix_routes()
        if (method, path) not in known
    ]
    routes = [*implemented, *missing]
    return [*routes, *openapi.openapi_routes(routes)]


def create_app(
    services: Services, instrumentation: Instrumentation = NO_INSTRUMENTATION
) -> HooklineApp:
    """The JSON API, with the pages mounted under their prefixes."""
    return HooklineApp(
        services,
        all_routes(None if services.metrics is None else services.metrics.exposition),
        pages=lambda gate: create_web_app(services.ops, services.settings, gate, services.stopping),
        page_prefixes=PAGE_PREFIXES,
        page_roots=PAGE_ROOTS,
        instrumentation=instrumentation,
    )
