"""Every route's declared access (``Route.access``) is what tokens actually get."""

from __future__ import annotations

import re

import httpx

from hookline.api.http import Access, Route
from hookline.api.routes import all_routes
from tests.integration.conftest import Api

WITH_BODY = {"POST", "PUT", "PATCH"}


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
        for route in app_routes:
            r = await _call(portal, route)
            assert r.status_code not in (401, 403), (route.method, route.path, r.text)


async def test_an_admin_token_is_never_refused(api: Api) -> None:
    """The admin token passes every implemented route's access check."""
    await _portal_token(api)
    for route in [*_implemented(Access.APP), *_implemented(Access.ADMIN)]:
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
