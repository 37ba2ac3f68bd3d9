"""``/api/v1/operational-webhook/endpoint``: Svix's operational-webhook API, in process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from svix.models import (
    ListResponseOperationalWebhookEndpointOut,
    OperationalWebhookEndpointHeadersOut,
    OperationalWebhookEndpointOut,
    OperationalWebhookEndpointSecretOut,
)

from hookline.domain.operational import OPERATIONAL_APP_ID
from tests.integration.conftest import Api

BASE = "/api/v1/operational-webhook/endpoint"


async def _create(api: Api, **fields: object) -> dict[str, object]:
    r = await api.client.post(BASE, json={"url": "https://ops.example/hook", **fields})
    assert r.status_code == 201, r.text
    body: dict[str, object] = r.json()
    return body


async def test_an_operational_endpoint_is_created_read_listed_replaced_and_deleted(
    api: Api,
) -> None:
    """The whole life of an operational endpoint, each answer parsed by the svix SDK's own
    model; a PUT on a new key creates it with that uid; a deleted one is a 404."""
    created = await _create(
        api, uid="pager", filterTypes=["endpoint.disabled"], metadata={"team": "ops"}
    )
    OperationalWebhookEndpointOut.model_validate(created)
    assert created["eventTypes"] == ["endpoint.disabled"]
    got = await api.client.get(f"{BASE}/pager")
    assert got.status_code == 200 and got.json()["id"] == created["id"]
    listed = await api.client.get(BASE)
    page = ListResponseOperationalWebhookEndpointOut.model_validate(listed.json())
    assert [e.id for e in page.data] == [created["id"]]
    put = await api.client.put(
        f"{BASE}/{created['id']}", json={"url": "https://ops.example/v2", "disabled": True}
    )
    assert put.status_code == 200
    assert (put.json()["url"], put.json()["disabled"]) == ("https://ops.example/v2", True)
    fresh = await api.client.put(f"{BASE}/second", json={"url": "https://ops.example/2"})
    assert fresh.status_code == 201 and fresh.json()["uid"] == "second"
    assert (await api.client.delete(f"{BASE}/pager")).status_code == 204
    assert (await api.client.get(f"{BASE}/pager")).status_code == 404


async def test_an_operational_endpoint_secret_is_shown_rotated_and_its_headers_replaced(
    api: Api,
) -> None:
    """The secret reads back, a rotation answers the new one; PUT headers replaces them and
    a credential header is listed as sensitive, not shown."""
    created = await _create(api)
    path = f"{BASE}/{created['id']}"
    first = OperationalWebhookEndpointSecretOut.model_validate(
        (await api.client.get(f"{path}/secret")).json()
    )
    assert first.key.startswith("whsec_")
    rotated = await api.client.post(f"{path}/secret/rotate", json={})
    assert rotated.status_code == 200 and rotated.json()["key"] != first.key
    assert (await api.client.get(f"{path}/secret")).json()["key"] == rotated.json()["key"]
    r = await api.client.put(
        f"{path}/headers", json={"headers": {"X-Team": "ops", "Authorization": "Bearer s"}}
    )
    assert r.status_code == 204
    shown = OperationalWebhookEndpointHeadersOut.model_validate(
        (await api.client.get(f"{path}/headers")).json()
    )
    assert shown.headers == {"X-Team": "ops"} and shown.sensitive == ["Authorization"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "https://ops.example", "filterTypes": ["order.paid"]}, "filterTypes"),
        ({"url": "ftp://ops.example"}, "url"),
        ({"url": "https://ops.example", "secret": "not-a-secret"}, "secret"),
    ],
)
async def test_bad_operational_endpoints_are_refused_and_nothing_is_stored(
    api: Api, body: dict[str, object], field: str
) -> None:
    """A filter naming a type hookline never sends, a bad URL or secret: a 4xx naming the
    field, and no endpoint is created."""
    r = await api.client.post(BASE, json=body)
    assert 400 <= r.status_code < 500 and field in r.text
    assert (await api.client.get(BASE)).json()["data"] == []


async def test_an_application_token_cannot_reach_operational_endpoints(api: Api) -> None:
    """A portal token is refused (403) on list and create: the events cover every tenant."""
    await api.client.post("/api/v1/app", json={"name": "Mine", "uid": "mine"})
    token = (await api.client.post("/api/v1/auth/app-portal-access/mine", json={})).json()["token"]
    async with api.as_token(token) as portal:
        assert (await portal.get(BASE)).status_code == 403
        r = await portal.post(BASE, json={"url": "https://evil.example"})
        assert r.status_code == 403
    assert (await api.client.get(BASE)).json()["data"] == []


async def test_the_reserved_application_is_invisible_to_the_application_routes(api: Api) -> None:
    """Once an operational endpoint exists, its application is not listed, is a 404 by id,
    takes no message and shows no endpoint through /api/v1/app."""
    created = await _create(api)
    apps = (await api.client.get("/api/v1/app")).json()["data"]
    assert OPERATIONAL_APP_ID not in [a["id"] for a in apps]
    app_path = f"/api/v1/app/{OPERATIONAL_APP_ID}"
    assert (await api.client.get(app_path)).status_code == 404
    assert (await api.client.get(f"{app_path}/endpoint/{created['id']}")).status_code == 404
    msg = {"eventType": "endpoint.created", "payload": {}}
    assert (await api.client.post(f"{app_path}/msg", json=msg)).status_code == 404
    assert (await api.client.delete(app_path)).status_code == 404
    assert (await api.client.get(f"{BASE}/{created['id']}")).status_code == 200


async def test_a_customer_endpoint_shows_since_when_it_fails_and_when_it_will_be_disabled(
    api: Api,
) -> None:
    """``failingSince`` and ``disableAt`` (hookline fields) are null for a healthy endpoint
    and set, five days apart by default, once a failing period is stored."""
    await api.client.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})
    r = await api.client.post("/api/v1/app/acme/endpoint", json={"url": "https://a.example"})
    endpoint = r.json()
    assert (endpoint["failingSince"], endpoint["disableAt"]) == (None, None)
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    await api.store.mark_endpoints_failing([endpoint["id"]], since)
    got = (await api.client.get(f"/api/v1/app/acme/endpoint/{endpoint['id']}")).json()
    assert datetime.fromisoformat(got["failingSince"]) == since
    assert datetime.fromisoformat(got["disableAt"]) == since + timedelta(days=5)
    listed = (await api.client.get("/api/v1/app/acme/endpoint")).json()["data"]
    assert listed[0]["failingSince"] == got["failingSince"]
