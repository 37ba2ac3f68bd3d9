"""The OpenAPI document at /api/v1/openapi.json: valid, complete, and true to the server.

Validity is openapi-spec-validator's judgement; completeness is checked against the route
table; truth by calling every implemented GET route on real data and validating each answer
against the schema the document gives it, and by sending each body route an empty body.
"""

from __future__ import annotations

import re
from typing import Any

from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate

from hookline.api.openapi import operation_id
from hookline.api.routes import all_routes
from tests.integration.certificates import CertificateAuthority
from tests.integration.conftest import Api, fail_next_delivery, group_failures


async def _document(api: Api) -> dict[str, Any]:
    r = await api.client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    return dict(r.json())


async def test_the_document_is_a_valid_openapi_3_1_document(api: Api) -> None:
    """openapi-spec-validator finds nothing wrong (duplicate operation ids among others)."""
    validate(await _document(api))


async def test_every_implemented_route_appears_and_no_stub_does(api: Api) -> None:
    """Each real route is an operation of the document under its unique id; each 501 stub
    is left out of ``paths`` and named under ``x-hookline-not-implemented``."""
    doc = await _document(api)
    routes = all_routes()
    ids = []
    for route in routes:
        methods = doc["paths"].get(route.path, {})
        if route.implemented:
            operation = methods[route.method.lower()]
            ids.append(operation["operationId"])
            assert operation["operationId"] == operation_id(route)
        else:
            assert route.method.lower() not in methods, route.path
            assert f"{route.method} {route.path}" in doc["x-hookline-not-implemented"]
    assert len(ids) == len(set(ids))
    documented = sum(len(methods) for methods in doc["paths"].values())
    assert documented == sum(1 for r in routes if r.implemented)


async def test_lists_are_documented_as_list_responses(api: Api) -> None:
    """A route that pages answers ``ListResponse_…`` with ``data``, ``iterator`` and
    ``done``, not the schema of one item."""
    doc = await _document(api)
    for route in all_routes():
        if not route.implemented or "iterator" not in route.query:
            continue
        ok = doc["paths"][route.path]["get"]["responses"]["200"]
        ref = ok["content"]["application/json"]["schema"]["$ref"]
        schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
        assert ref.rsplit("/", 1)[1].startswith("ListResponse"), route.path
        assert {"data", "iterator", "done"} <= set(schema["required"])


async def test_posts_declare_idempotency_key_and_constraints_are_documented(api: Api) -> None:
    """Every token-guarded POST takes ``idempotency-key``, except those that issue a token
    (their answer is never kept for a replay); enforced limits are in the schemas
    (throttleRate a uint16, uids by pattern, the header cap, URLs, list limit)."""
    doc = await _document(api)
    issuing = {r.path for r in all_routes() if r.method == "POST" and not r.replays}
    assert issuing, "the token-issuing routes are marked"
    for path, methods in doc["paths"].items():
        post = methods.get("post")
        if post is not None and "security" in post:
            names = {(p["name"], p["in"]) for p in post["parameters"]}
            assert (("idempotency-key", "header") in names) is (path not in issuing), path
    schemas = doc["components"]["schemas"]
    app_in = schemas["ApplicationIn"]["properties"]
    rate = next(a for a in app_in["throttleRate"]["anyOf"] if a.get("type") == "integer")
    assert rate["maximum"] == 65535 and rate["minimum"] == 1
    endpoint_in = schemas["EndpointIn"]["properties"]
    assert endpoint_in["url"]["format"] == "uri"
    headers = next(a for a in endpoint_in["headers"]["anyOf"] if a.get("type") == "object")
    assert headers["maxProperties"] == 50
    limit = next(
        p for p in doc["paths"]["/api/v1/app"]["get"]["parameters"] if p["name"] == "limit"
    )
    assert limit["schema"]["maximum"] == 250


async def _seed(api: Api) -> dict[str, str]:
    """An application with an endpoint (with OAuth and mTLS settings, and another with HTTP
    Basic, since an endpoint takes one of the two), a message with a failed attempt, and a
    task: one value for every path parameter of the implemented GET routes."""
    c = api.client
    assert (await c.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})).status_code == 201
    et = await c.post("/api/v1/event-type", json={"name": "a.b", "description": "d"})
    assert et.status_code == 201
    ep = await c.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/h", "uid": "ep1"}
    )
    assert ep.status_code == 201
    msg = await c.post("/api/v1/app/acme/msg", json={"eventType": "a.b", "payload": {"x": 1}})
    assert msg.status_code == 202
    attempt = await fail_next_delivery(api.store)
    (group,) = await group_failures(api.store)
    task = await c.post(
        "/api/v1/app/acme/endpoint/ep1/recover", json={"since": "2020-01-01T00:00:00Z"}
    )
    assert task.status_code == 202
    opw = await c.post(
        "/api/v1/operational-webhook/endpoint", json={"url": "https://example.com/o"}
    )
    assert opw.status_code == 201
    token = await c.post(
        "/api/v1/token", json={"name": "ci", "appId": "acme", "allowedNetworks": ["10.0.0.0/8"]}
    )
    assert token.status_code == 201
    oauth = {
        "authMethod": "clientSecretBasic",
        "clientId": "hookline",
        "clientSecret": "s3cret-client-secret",
        "grantType": "clientCredentials",
        "tokenUrl": "https://auth.example.com/token",
        "scopes": ["webhooks"],
    }
    assert (await c.put("/api/v1/app/acme/endpoint/ep1/oauth", json=oauth)).status_code == 204
    issued = CertificateAuthority("ci").issue("hookline", client=True)
    identity = {"identity": issued.key + issued.certificate}
    assert (await c.put("/api/v1/app/acme/endpoint/ep1/mtls", json=identity)).status_code == 204
    basic = await c.post(
        "/api/v1/app/acme/endpoint", json={"url": "https://example.com/b", "uid": "ep2"}
    )
    assert basic.status_code == 201
    login = {"username": "hookline", "password": "pa55word"}
    assert (await c.put("/api/v1/app/acme/endpoint/ep2/basic-auth", json=login)).status_code == 204
    return {
        "basic_endpoint_id": basic.json()["id"],
        "token_id": token.json()["id"],
        "app_id": "acme",
        "endpoint_id": ep.json()["id"],
        "msg_id": msg.json()["id"],
        "attempt_id": attempt.id,
        "group_id": group.id,
        "task_id": task.json()["id"],
        "event_type_name": "a.b",
        "opw_endpoint_id": opw.json()["id"],
    }


def _filled(path: str, values: dict[str, str]) -> str:
    """The path with each parameter replaced by the seeded object it names."""
    if "operational-webhook" in path:
        values = {**values, "endpoint_id": values["opw_endpoint_id"]}
    if path.endswith("/basic-auth"):
        values = {**values, "endpoint_id": values["basic_endpoint_id"]}
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


def _check(doc: dict[str, Any], schema: dict[str, Any], body: Any) -> list[str]:
    whole = {**schema, "components": doc["components"]}
    return [e.message for e in OAS31Validator(whole).iter_errors(body)]


async def test_every_get_route_answers_what_the_document_says(api: Api) -> None:
    """Each implemented GET route, called on real data, answers its documented status with
    a body that validates against its documented schema."""
    doc = await _document(api)
    values = await _seed(api)
    checked = 0
    for path, methods in doc["paths"].items():
        operation = methods.get("get")
        if operation is None or path == "/docs":
            continue
        r = await api.client.get(_filled(path, values))
        ok = operation["responses"].get(str(r.status_code))
        assert ok is not None and r.status_code < 300, (path, r.status_code, r.text)
        if "text/plain" in ok["content"]:
            assert r.headers["content-type"].startswith("text/plain"), path
            continue
        schema = ok["content"]["application/json"]["schema"]
        errors = _check(doc, schema, r.json())
        assert not errors, (path, errors[:3])
        checked += 1
    assert checked >= 20


async def test_optional_bodies_are_the_documented_ones(api: Api) -> None:
    """A route whose body the document marks required answers an empty body 422; one whose
    body is optional does not refuse it as invalid."""
    doc = await _document(api)
    values = await _seed(api)
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            if "requestBody" not in operation:
                continue
            r = await api.client.request(method.upper(), _filled(path, values), content=b"")
            if operation["requestBody"]["required"]:
                assert r.status_code == 422, (method, path, r.status_code)
                assert r.json()["detail"][0]["loc"][0] == "body"
            else:
                assert r.status_code != 422 or r.json()["detail"][0]["loc"][0] != "body", (
                    method,
                    path,
                    r.text,
                )


async def test_token_guarded_operations_declare_refusals_and_rate_limits(api: Api) -> None:
    """Every operation that takes a token documents 401, 403 (admin, capability, address)
    and 429 with its Retry-After header, the answers the limits and capabilities give."""
    doc = await _document(api)
    guarded = 0
    for methods in doc["paths"].values():
        for operation in methods.values():
            if "security" not in operation:
                continue
            guarded += 1
            responses = operation["responses"]
            assert {"401", "403", "429"} <= set(responses), operation["operationId"]
            assert "Retry-After" in responses["429"]["headers"], operation["operationId"]
    assert guarded > 50


async def test_every_answer_the_server_gives_is_documented(api: Api) -> None:
    """The answers Schemathesis found undocumented are declared: 201 from an upsert that
    created, 200 from ``get_if_exists`` and from a ``dry_run``, 404 where a token names an
    application, and on every operation the connection protocol's 408, 414, 431 and 503."""
    doc = await _document(api)
    paths = doc["paths"]
    for path in ("/api/v1/app/{app_id}", "/api/v1/event-type/{event_type_name}"):
        assert {"200", "201"} <= set(paths[path]["put"]["responses"]), path
    assert "200" in paths["/api/v1/app"]["post"]["responses"]
    recover = paths["/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover"]["post"]["responses"]
    assert recover["200"]["content"]["application/json"]["schema"]["$ref"].endswith("DryRunOut")
    assert "404" in paths["/api/v1/token"]["get"]["responses"]
    assert "404" in paths["/api/v1/token"]["post"]["responses"]
    assert "404" not in paths["/api/v1/app"]["get"]["responses"]
    for methods in paths.values():
        for operation in methods.values():
            assert {"408", "414", "431", "503"} <= set(operation["responses"])
