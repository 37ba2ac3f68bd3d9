"""A small ASGI core: requests, JSON responses, and a route table.

hookline answers on a plain ASGI callable rather than a framework because ingest speed
is a product goal: on this class of machine a raw ASGI app under uvicorn answers about
5,400 requests/s per process, Starlette about 3,200 and FastAPI about 1,700 (see
docs/dependencies.md). What a framework would add — routing, parsing, error mapping —
is the hundred lines below; the route table declares who may call each route
(``Access``) and doubles as the OpenAPI source.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any
from urllib.parse import parse_qs

import orjson
from pydantic import BaseModel

from hookline.domain.capabilities import Capability
from hookline.domain.errors import Unauthorized
from hookline.operations.context import Operations
from hookline.operations.principal import Principal

JSON_HEADERS = [(b"content-type", b"application/json")]


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    path_params: dict[str, str] = field(default_factory=dict)
    principal: Principal | None = None
    """Who is calling; set by the app before the handler of a non-public route runs."""
    idempotency: tuple[str, str] | None = None
    """(scope, key) reserved for this request, for handlers that complete it atomically."""
    idempotency_done: bool = False
    """Set by a handler that stored its response with its own writes."""

    def query_one(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    @property
    def caller(self) -> Principal:
        """The principal of a route that needs a token (never None once the app checked it)."""
        if self.principal is None:
            raise Unauthorized()
        return self.principal

    @property
    def app_key(self) -> str:
        """The application id or uid in the path."""
        return self.path_params["app_id"]


@dataclass(slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)


def json_response(status: int, content: Any, headers: Mapping[str, str] | None = None) -> Response:
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    return Response(status, orjson.dumps(content, option=orjson.OPT_UTC_Z), [*JSON_HEADERS, *extra])


def model_response(status: int, model: BaseModel) -> Response:
    return Response(status, model.model_dump_json(by_alias=True).encode(), list(JSON_HEADERS))


def empty_response(status: int = 204) -> Response:
    return Response(status)


def error_response(status: int, code: str, detail: str) -> Response:
    return json_response(status, {"code": code, "detail": detail})


def replay_record(response: Response) -> bytes:
    """How a response is kept for idempotent replays."""
    return orjson.dumps(
        {
            "headers": [(k.decode(), v.decode()) for k, v in response.headers],
            "body": response.body.decode("latin-1"),
        }
    )


Handler = Callable[[Operations, Request], Awaitable[Response]]


class Access(Enum):
    """Who may call a route, checked by the app before its handler runs."""

    PUBLIC = "public"
    """No token (health checks, the API document)."""
    APP = "app"
    """Any valid token; an application-scoped token sees its own application only, and needs
    the route's ``Route.capability`` (a route that declares none refuses scoped tokens)."""
    ADMIN = "admin"
    """Admin tokens only: an application-scoped token gets 403."""


@dataclass(frozen=True)
class Route:
    """One operation and who may call it; the metadata feeds the OpenAPI document."""

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    access: Access
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    implemented: bool = True
    query: tuple[str, ...] = ()
    capability: Capability | None = None
    """What an application-scoped token needs on an ``APP`` route (``domain.capabilities``)."""
    replays: bool = True
    """False where the response holds a secret shown once (a new token): an idempotency-key
    is then ignored, because keeping the response for replays would store the secret."""

    @property
    def pattern(self) -> re.Pattern[str]:
        return _compile(self.path)

    def unsupported_query(self, query: Mapping[str, list[str]]) -> str | None:
        """The first query parameter this route does not read, if any.

        A filter the Svix SDK sends is honoured or refused, never silently ignored: a list
        that ignored ``tag`` would look filtered and be wrong. Lists arrive as ``name`` or
        ``name[]``. A route that is not implemented answers 501 whatever it is asked.
        """
        if not query or not self.implemented:
            return None
        for name in query:
            if name.removesuffix("[]") not in self.query:
                return name
        return None


_PARAM = re.compile(r"\{(\w+)\}")


def _compile(path: str) -> re.Pattern[str]:
    pieces = _PARAM.split(path)
    regex = "".join(
        re.escape(piece) if i % 2 == 0 else f"(?P<{piece}>[^/]+)" for i, piece in enumerate(pieces)
    )
    return re.compile(f"^{regex.rstrip('/')}/?$")


class Router:
    """Matches a method and path; tells 404 (no path) from 405 (path, other method).

    Routes are bucketed by their number of path segments, so a request is tried only
    against the few patterns that could match it.
    """

    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes
        self._buckets: dict[int, list[tuple[re.Pattern[str], Route]]] = {}
        for route in routes:
            self._buckets.setdefault(_segments(route.path), []).append((route.pattern, route))

    def match(self, method: str, path: str) -> tuple[Route | None, dict[str, str], list[str]]:
        """The route and its path parameters; without one, the methods the path does
        allow (empty for an unknown path: a 404, else a 405 with ``Allow``)."""
        allowed: list[str] = []
        for pattern, route in self._buckets.get(_segments(path), ()):
            found = pattern.match(path)
            if found is None:
                continue
            if route.method == method:
                return route, found.groupdict(), [method]
            allowed.append(route.method)
        return None, {}, sorted(set(allowed))


def _segments(path: str) -> int:
    return path.strip("/").count("/")


def parse_query(raw: bytes) -> dict[str, list[str]]:
    return parse_qs(raw.decode("latin-1"), keep_blank_values=True) if raw else {}
