"""The OpenAPI document, generated from the route table so it describes the real routes.

It lists the implemented operations only (Svix's others answer 501 and are named under
``x-hookline-not-implemented``), each with its request body, its success response (lists as
``ListResponse_…``), its errors, its parameters and the constraints the server enforces on
them. ``tests/integration/test_openapi.py`` validates it with openapi-spec-validator and
checks the answers of the real routes against it.
"""

from __future__ import annotations

import html
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

import hookline
from hookline.api import failure_groups, params
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.domain import validation as v
from hookline.domain.audit import ACTION_PATTERN, ACTOR_PATTERN, MAX_ACTION_LENGTH
from hookline.domain.search import MAX_QUERY_LENGTH
from hookline.domain.tasks import TaskKind
from hookline.operations.context import Operations
from hookline.storage.base import MAX_LIST_LIMIT

_BOOLEAN: dict[str, Any] = {"type": "boolean"}
_DATE_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_KEY: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": v.MAX_KEY_LENGTH,
    "pattern": v.KEY_PATTERN,
}
QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIST_LIMIT, "default": 50},
    "iterator": {**_KEY, "pattern": r"^-?[a-zA-Z0-9\-_.]+$"},
    "order": {"type": "string", "enum": ["ascending", "descending"]},
    "status": {"type": "integer", "enum": [0, 1, 2, 3, 4]},
    "status_code_class": {"type": "integer", "enum": [0, 100, 200, 300, 400, 500]},
    "event_types": {"type": "array", "items": _KEY, "minItems": 1},
    "channel": {
        "type": "string",
        "minLength": 1,
        "maxLength": 128,
        "pattern": params.CHANNEL_PATTERN,
    },
    "tag": {
        "type": "string",
        "minLength": 1,
        "maxLength": v.MAX_TAG_LENGTH,
        "pattern": v.TAG_PATTERN,
    },
    "endpoint_id": _KEY,
    "app_id": _KEY,
    "task": {"type": "string", "enum": sorted({k.wire for k in TaskKind})},
    "actor": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": ACTOR_PATTERN},
    "action": {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_ACTION_LENGTH,
        "pattern": ACTION_PATTERN,
    },
    **{name: _DATE_TIME for name in ("before", "after", "since", "until")},
    "status_code": {"type": "integer", "minimum": 0, "maximum": 599},
    "q": {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
    **{
        name: _BOOLEAN
        for name in (
            "dry_run",
            "exclude_apps_with_no_endpoints",
            "exclude_apps_with_svix_play_endpoints",
            "expanded_statuses",
            "expunge",
            "get_if_exists",
            "include_archived",
            "with_content",
            "with_msg",
        )
    },
}
"""Each query parameter's schema: what ``api/params.py`` accepts for it."""
QUERY_OVERRIDES: dict[tuple[str, str], dict[str, Any]] = {
    ("/api/v1/background-task", "status"): {
        "type": "string",
        "enum": ["running", "finished", "failed", "canceled"],
    },
    **{(path, "status"): failure_groups.STATUS_SCHEMA for path in failure_groups.LISTS},
}
"""A parameter that means something else on one route."""
IDEMPOTENCY_KEY: dict[str, Any] = {
    "name": "idempotency-key",
    "in": "header",
    "required": False,
    "description": "A repeat with the same key and body replays the first response "
    "(docs/api-compatibility.md)",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": params.MAX_IDEMPOTENCY_KEY_LENGTH,
        "pattern": "^[\\x21-\\x7e]+$",
    },
}
_PARAM = re.compile(r"\{(\w+)\}")


def build_document(routes: list[Route]) -> dict[str, Any]:
    real = [r for r in routes if r.implemented]
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {
        (s.HttpErrorOut, "serialization"): None,
        (s.HttpValidationErrorOut, "serialization"): None,
        (s.DryRunOut, "serialization"): None,
        (s.HealthOut, "serialization"): None,
    }
    for route in real:
        if route.body is not None:
            wanted[(route.body, "validation")] = None
        if route.response is not None:
            wanted[(route.response, "serialization")] = None
    keys = sorted(wanted, key=lambda k: (k[0].__name__, k[1]))
    refs, schema = models_json_schema(
        keys, ref_template="#/components/schemas/{model}", by_alias=True
    )
    ref_of = {key: refs[key]["$ref"] for key in keys}
    paths: dict[str, dict[str, Any]] = {}
    for route in real:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, ref_of)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "hookline",
            "version": hookline.__version__,
            "description": "Svix v1 wire-compatible webhook API",
        },
        "components": {
            "schemas": schema.get("$defs", {}),
            "securitySchemes": {"HTTPBearer": {"type": "http", "scheme": "bearer"}},
        },
        "paths": paths,
        "x-hookline-not-implemented": [f"{r.method} {r.path}" for r in routes if not r.implemented],
    }


Refs = dict[tuple[type[BaseModel], JsonSchemaMode], str]


def operation_id(route: Route) -> str:
    """Unique by construction (a method and a path name one route):
    ``get_api_v1_app_app_id_endpoint``."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "_", route.path).strip("_")
    return f"{route.method.lower()}_{slug}"


def _operation(route: Route, ref_of: Refs) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": _KEY}
        for name in _PARAM.findall(route.path)
    ]
    for name in route.query:
        schema = QUERY_OVERRIDES.get((route.path, name)) or QUERY_SCHEMAS[name]
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": False}
        if schema.get("type") == "array":
            parameter.update(style="form", explode=False)
        parameters.append({**parameter, "schema": schema})
    if route.method == "POST" and route.access is not Access.PUBLIC and route.replays:
        parameters.append(IDEMPOTENCY_KEY)
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": operation_id(route),
        "parameters": parameters,
        "responses": _responses(route, ref_of),
    }
    if route.access is not Access.PUBLIC:
        operation["security"] = [{"HTTPBearer": []}]
    if route.body is not None:
        operation["requestBody"] = {
            "required": not getattr(route.body, "empty_body_allowed", False),
            "content": {
                "application/json": {"schema": {"$ref": ref_of[(route.body, "validation")]}}
            },
        }
    return operation


def _json(ref: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": ref}}}}


def _responses(route: Route, ref_of: Refs) -> dict[str, Any]:
    error = _json(ref_of[(s.HttpErrorOut, "serialization")])
    ok: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        ok.update(_json(ref_of[(route.response, "serialization")]))
    elif route.status != 204:
        ok["content"] = _UNTYPED.get(route.path, {"application/json": {"schema": {}}})
    responses: dict[str, Any] = {str(route.status): ok}
    if route.method == "PUT" and route.status == 200 and route.path.endswith("}"):
        responses["201"] = {**ok, "description": "Created (the upsert found nothing to update)"}
    if "get_if_exists" in route.query:
        responses["200"] = {**ok, "description": "Found (get_if_exists: it existed already)"}
    if "dry_run" in route.query:
        responses["200"] = {
            "description": "dry_run: what the task would take, nothing queued",
            **_json(ref_of[(s.DryRunOut, "serialization")]),
        }
    if route.access is not Access.PUBLIC:
        responses["401"] = {"description": "Missing or invalid token", **error}
        responses["403"] = {
            "description": "Needs an admin token, or a capability the token lacks, or the "
            "client's address is outside the API allowlist or the token's allowedNetworks",
            **error,
        }
        responses["429"] = {
            "description": "Over the token's or the address's request rate, or too many "
            "failed authentications from the address (docs/security.md)",
            "headers": {"Retry-After": _RETRY_AFTER},
            **error,
        }
    if _names_an_object(route):
        responses["404"] = {"description": "Not found", **error}
    if route.method in ("POST", "PUT", "PATCH", "DELETE") and route.access is not Access.PUBLIC:
        responses["409"] = {"description": "Conflict (a clash, a lost race, a key)", **error}
    if route.body is not None:
        responses["413"] = {"description": "Body larger than the limit", **error}
    if route.body is not None or route.query or "{" in route.path or route.method == "POST":
        responses["422"] = {
            "description": "Validation error",
            **_json(ref_of[(s.HttpValidationErrorOut, "serialization")]),
        }
    responses.update(_connection_answers(error))
    if route.access is not Access.PUBLIC:
        responses["503"] = {
            "description": "The database is unavailable, or every connection is busy; retry",
            **error,
        }
    elif route.response is s.HealthOut:
        responses["503"] = {
            "description": "The database is down (the health body, with a detail), or every "
            "connection is busy (an error)",
            "content": {
                "application/json": {
                    "schema": {
                        "anyOf": [
                            {"$ref": ref_of[(s.HealthOut, "serialization")]},
                            error["content"]["application/json"]["schema"],
                        ]
                    }
                }
            },
        }
    return responses


def _connection_answers(error: dict[str, Any]) -> dict[str, Any]:
    """What the connection protocol (``api/connections.py``) answers on any path, before a
    route is chosen: the read deadlines, the head limits and the connection cap."""
    return {
        "408": {
            "description": "The request head or body did not arrive within "
            "HOOKLINE_HEADER_TIMEOUT or HOOKLINE_BODY_TIMEOUT; the connection is closed",
            **error,
        },
        "414": {"description": "Request target longer than HOOKLINE_MAX_URL_BYTES", **error},
        "431": {
            "description": "More header fields than HOOKLINE_MAX_HEADER_COUNT, or a head "
            "larger than HOOKLINE_MAX_HEADER_BYTES",
            **error,
        },
        "503": {
            "description": "Every connection of the process is busy (HOOKLINE_MAX_CONNECTIONS)",
            **error,
        },
    }


def _names_an_object(route: Route) -> bool:
    """Whether the route names something that may be absent (404): a path parameter, an
    ``app_id`` filter, a body field naming an application (``POST /api/v1/token``), or the
    metrics, which are absent when turned off."""
    body_fields = route.body.model_fields if route.body is not None else {}
    named = "{" in route.path or "app_id" in route.query or "app_id" in body_fields
    return named or route.path == "/metrics"


_RETRY_AFTER: dict[str, Any] = {
    "description": "Seconds to wait before trying again",
    "schema": {"type": "integer", "minimum": 1},
}

_UNTYPED: dict[str, dict[str, Any]] = {
    "/api/v1/openapi.json": {"application/json": {"schema": {"type": "object"}}},
    "/docs": {"text/html": {"schema": {"type": "string"}}},
    "/metrics": {"text/plain": {"schema": {"type": "string"}}},
}
"""The routes whose answer is not a wire model: this document, its page and the metrics."""


def openapi_routes(routes: list[Route]) -> list[Route]:
    """Routes serving the document and a readable page; the document covers ``routes`` and
    these two, built once on first request."""
    cache: dict[str, Any] = {}
    everything: list[Route] = []

    async def openapi_json(ops: Operations, request: Request) -> Response:
        if "doc" not in cache:
            cache["doc"] = build_document(everything)
        return json_response(200, cache["doc"])

    async def docs_page(ops: Operations, request: Request) -> Response:
        rows = "\n".join(
            f"<tr><td><code>{r.method}</code></td><td><code>{html.escape(r.path)}</code></td>"
            f"<td>{html.escape(r.summary)}</td></tr>"
            for r in routes
            if r.implemented
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'><title>hookline API</title>"
            "</head><body><h1>hookline API</h1><p>Svix v1 wire-compatible. Machine-readable "
            "document: <a href='/api/v1/openapi.json'>/api/v1/openapi.json</a>. Send "
            "<code>Authorization: Bearer &lt;token&gt;</code>.</p>"
            f"<table>{rows}</table></body></html>"
        )
        return Response(200, page.encode(), [(b"content-type", b"text/html; charset=utf-8")])

    own = [
        Route(
            "GET",
            "/api/v1/openapi.json",
            openapi_json,
            "This OpenAPI document",
            "Docs",
            Access.PUBLIC,
        ),
        Route("GET", "/docs", docs_page, "Human-readable API reference", "Docs", Access.PUBLIC),
    ]
    everything.extend([*routes, *own])
    return own
