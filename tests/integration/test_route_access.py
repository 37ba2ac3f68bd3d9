"""Every route's declared access (``Route.access``, ``Route.capability``) is what tokens get.

The walks below call every route of the table, 501 stubs included, with each kind of token
and compare the answer with the declaration: a refused call is 403 ``forbidden`` before any
handler runs; an allowed one is never 401 or 403.
"""

from __future__ import annotations

import re

import httpx
import pytest

from hookline.api.http import Access, Route
from hookline.api.routes import all_routes
from hookline.domain.capabilities import Capability, grant
from tests.integration.conftest import Api

WITH_BODY = {"POST", "PUT", "PATCH"}
LOGOUT = ("POST", "/api/v1/auth/logout")
"""Revokes the calling token: walked last, and refused to admin tokens (as in Svix)."""


def _path(route: Route) -> str:
    """The route's path with the portal's own application and placeholder ids filled in."""
    return re.sub(r"\{(\w+)\}", lambda m: "mine" if m.group(1) == "app_id" else "x", route.path)


async def _call(client: httpx.AsyncClient, route: Route) -> httpx.Response:
    body: dict[str, object] | None = {} if route.method in WITH_BODY else None
    return await client.request(route.method, _path(route), json=body)


def _implemented(access: Access) -> list[Route]:
    return [r for r in all_routes() if r.implemented and r.access is access]


async def _portal_token(api: Api) -> str:
    assert (await api.client.post("/api/v1/app", json={"name": "M", "uid": "mine"})).is_success
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json={})
    return str(r.json()["token"])


async def test_a_portal_token_gets_403_on_every_admin_route(api: Api) -> None:
    """Each ADMIN route answers an application-scoped token 403 forbidden, before its handler."""
    admin_routes = _implemented(Access.ADMIN)
    assert admin_routes
    async with api.as_token(await _portal_token(api)) as portal:
        for route in admin_routes:
            r = await _call(portal, route)
            assert (r.status_code, r.json()["code"]) == (403, "forbidden"), route.path
    assert (await api.client.get("/api/v1/app/mine")).status_code == 200


async def test_a_portal_token_is_never_refused_by_an_app_route(api: Api) -> None:
    """Each APP route lets an application-scoped token through to the operation (no 401/403)."""
    app_routes = _implemented(Access.APP)
    assert app_routes
    async with api.as_token(await _portal_token(api)) as portal:
        for route in _walk_order(app_routes):
            r = await _call(portal, route)
            assert r.status_code not in (401, 403), (route.method, route.path, r.text)


async def test_an_admin_token_is_never_refused(api: Api) -> None:
    """The admin token passes every implemented route's access check."""
    await _portal_token(api)
    for route in [*_implemented(Access.APP), *_implemented(Access.ADMIN)]:
        if (route.method, route.path) == LOGOUT:
            continue
        r = await _call(api.client, route)
        assert r.status_code not in (401, 403), (route.method, route.path, r.text)


async def test_every_route_but_public_ones_needs_a_token(api: Api) -> None:
    """Without a token every non-public route (501 ones included) is 401; public ones answer."""
    async with httpx.AsyncClient(transport=api.client._transport, base_url="http://h") as anon:
        for route in all_routes():
            r = await _call(anon, route)
            if route.access is Access.PUBLIC:
                assert r.status_code != 401, route.path
            else:
                assert r.status_code == 401, (route.method, route.path)
                assert r.json()["code"] == "authentication_failed"


def _walk_order(routes: list[Route]) -> list[Route]:
    """The routes with logout last, so the token stays valid for the others."""
    return sorted(routes, key=lambda r: (r.method, r.path) == LOGOUT)


async def _walk(api: Api, token: str, held: frozenset[Capability]) -> None:
    """Call every route with ``token``; each is allowed exactly when the route is an APP route
    whose declared capability the token holds."""
    async with api.as_token(token) as client:
        for route in _walk_order(all_routes()):
            if route.access is Access.PUBLIC:
                continue
            allowed = route.access is Access.APP and route.capability in held
            r = await _call(client, route)
            where = (route.method, route.path, sorted(c.value for c in held), r.text)
            if allowed:
                assert r.status_code not in (401, 403), where
            else:
                assert (r.status_code, r.json()["code"]) == (403, "forbidden"), where


def test_every_app_route_declares_a_capability() -> None:
    """No APP route (501 stubs included) leaves its capability undeclared."""
    undeclared = [
        (r.method, r.path) for r in all_routes() if r.access is Access.APP and r.capability is None
    ]
    assert undeclared == []


async def test_a_read_only_token_only_reads(api: Api) -> None:
    """A ``readOnly`` portal token passes the ViewBase routes and is refused every other:
    no endpoint created or changed, no publish, no secret read or rotated, no headers."""
    await _portal_token(api)
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json={"readOnly": True})
    held = frozenset({Capability.VIEW_BASE})
    await _walk(api, str(r.json()["token"]), held)


@pytest.mark.parametrize("capability", list(Capability), ids=lambda c: c.value)
async def test_each_capability_opens_exactly_its_routes(api: Api, capability: Capability) -> None:
    """A token created with one capability passes the routes that capability (and what it
    implies) covers, and gets 403 on every other non-public route."""
    await _portal_token(api)
    body = {"appId": "mine", "capabilities": [capability.value]}
    r = await api.client.post("/api/v1/token", json=body)
    assert r.status_code == 201, r.text
    await _walk(api, str(r.json()["token"]), grant([capability], read_only=False))


async def test_read_only_with_view_endpoint_secret_reads_secrets_but_changes_nothing(
    api: Api,
) -> None:
    """readOnly with ViewEndpointSecret named: secrets and headers readable, nothing writable."""
    await _portal_token(api)
    body = {"readOnly": True, "capabilities": ["ViewEndpointSecret", "ManageEndpoint"]}
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json=body)
    held = frozenset({Capability.VIEW_BASE, Capability.VIEW_ENDPOINT_SECRET})
    await _walk(api, str(r.json()["token"]), held)
