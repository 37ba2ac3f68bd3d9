"""Tenant isolation, walked route by route (issue 14, "attacked in CI").

Application A has real objects of every kind (an endpoint with custom headers, OAuth and a
trusted CA, a message, a failed attempt, a dead letter, a background task, a token).
Application B's token, holding every capability, calls every implemented route of the table
naming A's objects, with a valid body (so a refusal is the isolation, not a 422), and must
get 404 (A is absent to it) or 403 (an admin route). Afterwards A, read through the admin
API, is exactly as before.

The walk covers each route twice: with A's application in the path, and with B's own
application in the path but A's endpoint, message, attempt or task ids after it, so a route
that checks the application and then reads the object by id alone is caught. A's own
read-only token walks them too: every call that is not a read is refused and changes nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from hookline.api.http import Access, Route
from hookline.api.routes import all_routes
from tests.integration.certificates import CertificateAuthority
from tests.integration.conftest import Api, fail_next_delivery, group_failures

SINCE = {"since": "2020-01-01T00:00:00Z"}
PRIVATE_CA = CertificateAuthority("isolation-ca")
"""A CA whose certificate a valid mTLS body names (PEMs are checked before anything else)."""
OAUTH = {
    "authMethod": "clientSecretPost",
    "clientId": "isolation",
    "clientSecret": "isolation-client-secret",
    "grantType": "clientCredentials",
    "tokenUrl": "https://auth.example.com/token",
}
BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/api/v1/app/{app_id}/endpoint"): {"url": "https://example.com/b"},
    ("PUT", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"): {"url": "https://example.com/b"},
    ("PATCH", "/api/v1/app/{app_id}/endpoint/{endpoint_id}"): {"description": "taken"},
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/secret/rotate"): {},
    ("PUT", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers"): {"headers": {"x-b": "1"}},
    ("PATCH", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/headers"): {"headers": {"x-b": "1"}},
    ("POST", "/api/v1/app/{app_id}/msg"): {"eventType": "a.b", "payload": {"b": 1}},
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/send-example"): {"eventType": "a.b"},
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/recover"): SINCE,
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/replay-missing"): SINCE,
    ("POST", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/bulk-replay"): SINCE,
    ("POST", "/api/v1/app/{app_id}/dead-letter/redrive"): {},
    ("POST", "/api/v1/app/{app_id}/expunge-content"): SINCE,
    ("PUT", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/oauth"): OAUTH,
    ("PUT", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/mtls"): {"serverCaCert": PRIVATE_CA.pem},
    ("PUT", "/api/v1/app/{app_id}/endpoint/{endpoint_id}/basic-auth"): {
        "username": "b",
        "password": "taken",
    },
}
"""A body each APP route would accept from A's own token: one line per new body route."""
ORGANISATION_WIDE = {
    ("GET", "/api/v1/event-type"),
    ("GET", "/api/v1/event-type/{event_type_name}"),
}
"""Event types belong to the organisation, not to an application (as in Svix): every
application's token reads them."""
OWN_TOKEN_ONLY = {("POST", "/api/v1/auth/logout")}
"""Acts on the calling token alone (tests/integration/test_api_tokens.py)."""
OWN_LIST = {("GET", "/api/v1/background-task")}
"""Lists the caller's own objects: answers 200, and must hold nothing of A's."""


@dataclass(frozen=True)
class Tenant:
    app_id: str
    endpoint_id: str
    msg_id: str
    attempt_id: str
    task_id: str
    token_id: str
    group_id: str

    def values(self) -> dict[str, str]:
        return {
            "app_id": self.app_id,
            "endpoint_id": self.endpoint_id,
            "msg_id": self.msg_id,
            "attempt_id": self.attempt_id,
            "task_id": self.task_id,
            "token_id": self.token_id,
            "group_id": self.group_id,
            "event_type_name": "a.b",
        }


async def _tenant(api: Api, uid: str) -> Tenant:
    """An application with one object of every kind, through the admin API."""
    c = api.client
    app = await c.post("/api/v1/app", json={"name": uid, "uid": uid})
    assert app.status_code == 201, app.text
    ep = await c.post(
        f"/api/v1/app/{uid}/endpoint",
        json={"url": f"https://example.com/{uid}", "headers": {"x-tenant": uid}},
    )
    assert ep.status_code == 201, ep.text
    msg = await c.post(f"/api/v1/app/{uid}/msg", json={"eventType": "a.b", "payload": {"t": uid}})
    assert msg.status_code == 202, msg.text
    attempt = await fail_next_delivery(api.store)
    (group,) = [g for g in await group_failures(api.store) if g.app_id == app.json()["id"]]
    credentials = f"/api/v1/app/{uid}/endpoint/{ep.json()['id']}"
    assert (await c.put(f"{credentials}/oauth", json=OAUTH)).status_code == 204
    ca = {"serverCaCert": PRIVATE_CA.pem}
    assert (await c.put(f"{credentials}/mtls", json=ca)).status_code == 204
    task = await c.post(f"/api/v1/app/{uid}/endpoint/{ep.json()['id']}/recover", json=SINCE)
    assert task.status_code == 202, task.text
    token = await c.post("/api/v1/token", json={"name": uid, "appId": uid})
    assert token.status_code == 201, token.text
    return Tenant(
        app.json()["id"],
        ep.json()["id"],
        msg.json()["id"],
        attempt.id,
        task.json()["id"],
        token.json()["id"],
        group.id,
    )


async def _snapshot(api: Api, t: Tenant) -> dict[str, Any]:
    """Everything of A the admin API shows, secrets and headers included."""
    app, ep, msg = (
        f"/api/v1/app/{t.app_id}",
        f"/api/v1/app/{t.app_id}/endpoint/{t.endpoint_id}",
        f"/api/v1/app/{t.app_id}/msg/{t.msg_id}",
    )
    reads = [
        app,
        f"{app}/endpoint",
        ep,
        f"{ep}/secret",
        f"{ep}/headers",
        f"{ep}/msg",
        f"{ep}/stats",
        f"{ep}/attempt-stats",
        f"{app}/msg?with_content=true",
        f"{msg}?with_content=true",
        f"{msg}/endpoint",
        f"{msg}/attempt/{t.attempt_id}",
        f"{app}/attempt/msg/{t.msg_id}",
        f"{app}/attempt/endpoint/{t.endpoint_id}",
        f"{app}/dead-letter",
        f"/api/v1/background-task/{t.task_id}",
        f"{app}/failure-group/{t.group_id}",
        f"/api/v1/token?app_id={t.app_id}",
        f"{ep}/oauth",
        f"{ep}/mtls",
    ]
    seen: dict[str, Any] = {}
    for path in reads:
        r = await api.client.get(path)
        assert r.status_code == 200, (path, r.text)
        seen[path] = r.json()
    basic = await api.client.get(f"{ep}/basic-auth")
    seen[f"{ep}/basic-auth"] = (basic.status_code, basic.json())
    assert seen[f"{app}/dead-letter"]["data"], "A has a dead letter to protect"
    for token in seen[f"/api/v1/token?app_id={t.app_id}"]["data"]:
        token.pop("lastUsedAt")  # a token's use is recorded: not a change to A
    return seen


def _app_routes() -> list[Route]:
    return [r for r in all_routes() if r.implemented and r.access is not Access.PUBLIC]


def _fill(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def _call(client: httpx.AsyncClient, route: Route, values: dict[str, str]) -> httpx.Response:
    body = BODIES.get((route.method, route.path))
    if route.body is not None and body is None:
        body = {}
    return await client.request(route.method, _fill(route.path, values), json=body)


def _names_objects_of(path: str) -> bool:
    """Whether the path names an object below the application (endpoint, message, …)."""
    names = ("endpoint_id", "msg_id", "attempt_id", "group_id")
    return any(f"{{{name}}}" in path for name in names)


def _is_upsert(route: Route) -> bool:
    return route.method == "PUT" and route.path.endswith("}")


def test_every_app_route_with_a_body_has_a_valid_one() -> None:
    """A new APP route that takes a body gets its line in BODIES, so the walk sends it a
    body that would pass validation and the 404 it expects is the isolation's, not a 422's."""
    missing = [
        (r.method, r.path)
        for r in _app_routes()
        if r.access is Access.APP and r.body is not None and (r.method, r.path) not in BODIES
    ]
    assert missing == []


async def test_another_applications_token_finds_nothing_of_a_and_changes_nothing(
    api: Api,
) -> None:
    """B's token (every capability) on every route, naming A's application and objects:
    404 on every application route, 403 on every admin route; A's data unchanged."""
    a = await _tenant(api, "tenant-a")
    b = await _tenant(api, "tenant-b")
    before = await _snapshot(api, a)
    r = await api.client.post("/api/v1/token", json={"name": "b-all", "appId": "tenant-b"})
    walked = 0
    async with api.as_token(str(r.json()["token"])) as as_b:
        for route in _app_routes():
            key = (route.method, route.path)
            if key in OWN_TOKEN_ONLY or key in ORGANISATION_WIDE:
                continue
            answer = await _call(as_b, route, a.values())
            where = (route.method, route.path, answer.status_code, answer.text[:200])
            if key in OWN_LIST:
                assert answer.status_code == 200, where
                assert a.task_id not in answer.text, where
                assert b.task_id in answer.text, where
            elif route.access is Access.ADMIN:
                assert answer.status_code == 403, where
            else:
                assert answer.status_code == 404, where
                assert answer.json()["code"] == "not_found", where
            walked += 1
    assert walked > 40
    assert await _snapshot(api, a) == before


async def test_a_tokens_own_application_in_the_path_does_not_reach_a_s_objects(
    api: Api,
) -> None:
    """B's token with B's application in the path and A's endpoint, message or attempt ids
    after it: 404 everywhere (an upsert creates B's own object instead, never touching A's);
    A's data unchanged."""
    a = await _tenant(api, "tenant-a")
    b = await _tenant(api, "tenant-b")
    before = await _snapshot(api, a)
    r = await api.client.post("/api/v1/token", json={"name": "b-all", "appId": "tenant-b"})
    mixed = {**a.values(), "app_id": b.app_id}
    walked = 0
    # The upsert goes last: it creates B's endpoint with A's endpoint id as its uid, which
    # B's later calls would then rightly find.
    routes = sorted(_app_routes(), key=_is_upsert)
    async with api.as_token(str(r.json()["token"])) as as_b:
        for route in routes:
            if route.access is not Access.APP or not _names_objects_of(route.path):
                continue
            answer = await _call(as_b, route, mixed)
            where = (route.method, route.path, answer.status_code, answer.text[:200])
            if _is_upsert(route):
                assert answer.status_code == 201, where
                assert answer.json()["id"] != a.endpoint_id, where
            else:
                assert answer.status_code == 404, where
            walked += 1
    assert walked > 20
    assert await _snapshot(api, a) == before


async def test_a_read_only_token_changes_nothing_of_its_own_application(api: Api) -> None:
    """A's own ``readOnly`` portal token on every route naming A's objects, each with a body
    that would succeed: every call that is not a read is 403, and A is unchanged."""
    a = await _tenant(api, "tenant-a")
    r = await api.client.post("/api/v1/auth/app-portal-access/tenant-a", json={"readOnly": True})
    before = await _snapshot(api, a)
    async with api.as_token(str(r.json()["token"])) as read_only:
        for route in _app_routes():
            if (route.method, route.path) in OWN_TOKEN_ONLY or route.method == "GET":
                continue
            answer = await _call(read_only, route, a.values())
            assert answer.status_code == 403, (route.method, route.path, answer.text[:200])
    assert await _snapshot(api, a) == before
