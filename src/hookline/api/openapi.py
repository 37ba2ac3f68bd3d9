"""The OpenAPI document, generated from the route table so it describes the real routes."""

from __future__ import annotations

import html
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

import hookline
from hookline.api import schemas as s
from hookline.api.http import Access, Request, Response, Route, json_response
from hookline.operations.context import Operations

LIST_PARAMS = {"limit": "integer", "status": "integer", "status_code_class": "integer"}
BOOL_PARAMS = {"with_content", "include_archived", "expunge", "get_if_exists", "with_msg"}


def build_document(routes: list[Route]) -> dict[str, Any]:
    models: set[type[BaseModel]] = {s.HttpErrorOut}
    for route in routes:
        models.update(m for m in (route.body, route.response) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, schema = models_json_schema(
        [(m, "validation") for m in ordered],
        ref_template="#/components/schemas/{model}",
        by_alias=True,
    )
    ref_of = {m: refs[(m, "validation")]["$ref"] for m in ordered}
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
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
    }


def _operation(route: Route, ref_of: dict[type[BaseModel], str]) -> dict[str, Any]:
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _path_params(route.path)
    ]
    for name in route.query:
        kind = "boolean" if name in BOOL_PARAMS else LIST_PARAMS.get(name, "string")
        parameters.append(
            {"name": name, "in": "query", "required": False, "schema": {"type": kind}}
        )
    operation: dict[str, Any] = {
        "summary": route.summary,
        "tags": [route.tag],
        "operationId": f"{route.method.lower()}_{route.handler.__name__}",
        "parameters": parameters,
        "responses": _responses(route, ref_of),
    }
    if route.access is not Access.PUBLIC:
        operation["security"] = [{"HTTPBearer": []}]
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": ref_of[route.body]}}},
        }
    return operation


def _responses(route: Route, ref_of: dict[type[BaseModel], str]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": {"$ref": ref_of[s.HttpErrorOut]}}}}
    if not route.implemented:
        return {"501": {"description": "Not implemented by hookline", **error}}
    ok: dict[str, Any] = {"description": "Success"}
    if route.response is not None:
        ok["content"] = {"application/json": {"schema": {"$ref": ref_of[route.response]}}}
    responses: dict[str, Any] = {str(route.status): ok}
    if route.access is not Access.PUBLIC:
        responses["401"] = {"description": "Missing or invalid token", **error}
    if route.access is Access.ADMIN:
        responses["403"] = {"description": "Needs an admin token", **error}
    if "{" in route.path:
        responses["404"] = {"description": "Not found", **error}
    if route.body is not None or route.query:
        responses["422"] = {"description": "Validation error"}
    return responses


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


def openapi_routes(routes: list[Route]) -> list[Route]:
    """Routes serving the document and a readable page; built over the final route list."""
    cache: dict[str, Any] = {}

    async def openapi_json(ops: Operations, request: Request) -> Response:
        if "doc" not in cache:
            cache["doc"] = build_document(routes)
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

    return [
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
