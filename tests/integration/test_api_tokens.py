"""The token routes over HTTP: /api/v1/token, auth/logout, auth/app/{app_id}/expire-all."""

from __future__ import annotations

from tests.conftest import utcnow
from tests.integration.conftest import ADMIN_TOKEN, Api


async def _app(api: Api) -> None:
    assert (await api.client.post("/api/v1/app", json={"name": "M", "uid": "mine"})).is_success


async def test_a_created_token_is_shown_once_listed_without_it_and_revoked(api: Api) -> None:
    """POST answers the token once; GET (list and one) never shows it; DELETE revokes it at
    once, and a second DELETE is 404."""
    await _app(api)
    r = await api.client.post(
        "/api/v1/token",
        json={"name": "ci", "appId": "mine", "capabilities": ["ViewBase"], "expiry": 3600},
    )
    assert r.status_code == 201, r.text
    created = r.json()
    token, token_id = created["token"], created["id"]
    assert created["capabilities"] == ["ViewBase"] and created["readOnly"] is True
    assert created["expiresAt"] is not None and created["lastUsedAt"] is None
    async with api.as_token(token) as scoped:
        assert (await scoped.get("/api/v1/app/mine")).status_code == 200
    listed = (await api.client.get("/api/v1/token")).json()["data"]
    assert {t["id"] for t in listed} >= {token_id}
    assert token not in str(listed) and all("token" not in t for t in listed)
    one = (await api.client.get(f"/api/v1/token/{token_id}")).json()
    assert one["name"] == "ci" and one["lastUsedAt"] is not None and "token" not in one
    mine = (await api.client.get("/api/v1/token", params={"app_id": "mine"})).json()["data"]
    assert [t["id"] for t in mine] == [token_id]
    assert (await api.client.delete(f"/api/v1/token/{token_id}")).status_code == 204
    async with api.as_token(token) as scoped:
        assert (await scoped.get("/api/v1/app/mine")).status_code == 401
    assert (await api.client.delete(f"/api/v1/token/{token_id}")).status_code == 404


async def test_an_admin_token_can_be_created_and_the_configured_one_is_marked(api: Api) -> None:
    """Without appId the token is admin; the configured admin token is listed as such."""
    r = await api.client.post("/api/v1/token", json={"name": "deploy"})
    assert r.status_code == 201 and r.json()["capabilities"] is None
    async with api.as_token(r.json()["token"]) as admin:
        assert (await admin.get("/api/v1/app")).status_code == 200
    listed = (await api.client.get("/api/v1/token")).json()["data"]
    assert [t["configured"] for t in listed].count(True) == 1


async def test_bad_token_requests_are_refused_with_a_clear_422(api: Api) -> None:
    """An unknown capability, capabilities on an admin token, an expiry under a minute."""
    await _app(api)
    for body in (
        {"appId": "mine", "capabilities": ["Everything"]},
        {"readOnly": True},
        {"appId": "mine", "expiry": 1},
    ):
        r = await api.client.post("/api/v1/token", json=body)
        assert r.status_code == 422, (body, r.text)
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json={"capabilities": ["X"]})
    assert r.status_code == 422
    assert (await api.client.post("/api/v1/token", json={"appId": "nope"})).status_code == 404
    assert len((await api.client.get("/api/v1/token")).json()["data"]) == 1


async def test_logout_revokes_the_calling_portal_token(api: Api) -> None:
    """auth/logout answers 204 and the token is refused afterwards; an admin token gets 403."""
    await _app(api)
    r = await api.client.post("/api/v1/auth/app-portal-access/mine", json={})
    async with api.as_token(r.json()["token"]) as portal:
        assert (await portal.post("/api/v1/auth/logout")).status_code == 204
        assert (await portal.get("/api/v1/app/mine")).status_code == 401
    refused = await api.client.post("/api/v1/auth/logout")
    assert refused.status_code == 403 and ADMIN_TOKEN not in refused.text


async def test_expire_all_ends_the_application_portal_tokens(api: Api) -> None:
    """auth/app/{app_id}/expire-all answers 204; the application's tokens are refused at once
    (or after ``expiry`` seconds), those of sessions not named keep working."""
    await _app(api)
    grants = []
    for session in ("s1", "s2"):
        r = await api.client.post(
            "/api/v1/auth/app-portal-access/mine", json={"sessionId": session}
        )
        grants.append(r.json()["token"])
    r = await api.client.post("/api/v1/auth/app/mine/expire-all", json={"sessionIds": ["s1"]})
    assert r.status_code == 204
    async with api.as_token(grants[0]) as one, api.as_token(grants[1]) as two:
        assert (await one.get("/api/v1/app/mine")).status_code == 401
        assert (await two.get("/api/v1/app/mine")).status_code == 200
        assert (await api.client.post("/api/v1/auth/app/mine/expire-all")).status_code == 204
        assert (await two.get("/api/v1/app/mine")).status_code == 401
    r = await api.client.post("/api/v1/auth/app/mine/expire-all", json={"expiry": -1})
    assert r.status_code == 422


async def test_a_new_token_is_never_kept_for_idempotent_replays(api: Api) -> None:
    """Token-issuing routes ignore idempotency-key: the answer holds the token, which would
    otherwise be stored in plaintext for replays; each call issues a new token."""
    await _app(api)
    headers = {"idempotency-key": "same"}
    for path, body in (
        ("/api/v1/token", {"appId": "mine"}),
        ("/api/v1/auth/app-portal-access/mine", {}),
    ):
        first = await api.client.post(path, json=body, headers=headers)
        second = await api.client.post(path, json=body, headers=headers)
        assert first.json()["token"] != second.json()["token"], path
        assert "idempotent-replayed" not in second.headers
    found = await api.store.idempotency_begin("admin", "same", "probe", utcnow())
    assert found is None
