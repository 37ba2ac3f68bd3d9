"""``HOOKLINE_ENDPOINT_HTTPS_ONLY`` and the destination port lists at the API: every route
that sets an endpoint URL (create, upsert, patch, operational-webhook endpoints) answers 422
naming the rule and the ``url`` field, and stores nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.domain.ssrf import PortPolicy
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token, transport_for
from hookline.storage.sqlite import SqliteStore

ADMIN_TOKEN = "hl_admin_destination-rules-long-enough-for-the-rule"
HTTPS_ONLY = "this server refuses http:// endpoints (HOOKLINE_ENDPOINT_HTTPS_ONLY)"
PORT_DENIED = "port 22 is denied by HOOKLINE_OUTBOUND_DENY_PORTS"
OPERATIONAL = "/api/v1/operational-webhook/endpoint"


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The real app, https-only, with port 22 denied, and an application ``acme`` holding
    one https endpoint ``ep``."""
    settings = load_settings(
        {"admin_token": ADMIN_TOKEN, "endpoint_https_only": "true", "outbound_deny_ports": "22"},
        environ={},
    )
    store = SqliteStore(str(tmp_path / "api.db"))
    await store.open()
    await ensure_admin_token(store, settings)
    ops = Operations(
        store,
        endpoint_https_only=settings.endpoint_https_only,
        ports=PortPolicy(deny=settings.outbound_deny_ports),
    )
    transport = httpx.ASGITransport(app=create_app(Services(ops=ops, settings=settings)))
    async with httpx.AsyncClient(
        transport=transport,
        base_url="http://hookline",
        headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
    ) as http:
        assert (await http.post("/api/v1/app", json={"name": "Acme", "uid": "acme"})).is_success
        created = await http.post(
            "/api/v1/app/acme/endpoint", json={"url": "https://example.com/hook", "uid": "ep"}
        )
        assert created.status_code == 201, created.text
        yield http
    await store.close()


def assert_refused(response: httpx.Response, message: str) -> None:
    assert response.status_code == 422, response.text
    assert message in response.text
    assert '"url"' in response.text, "the error names the url field"


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://example.com/hook", HTTPS_ONLY), ("https://example.com:22/hook", PORT_DENIED)],
)
async def test_every_route_that_sets_a_url_refuses_it(
    client: httpx.AsyncClient, url: str, message: str
) -> None:
    body = {"url": url}
    assert_refused(await client.post("/api/v1/app/acme/endpoint", json=body), message)
    assert_refused(await client.put("/api/v1/app/acme/endpoint/new-one", json=body), message)
    assert_refused(await client.put("/api/v1/app/acme/endpoint/ep", json=body), message)
    assert_refused(await client.patch("/api/v1/app/acme/endpoint/ep", json=body), message)
    assert_refused(await client.post(OPERATIONAL, json=body), message)
    assert_refused(await client.put(f"{OPERATIONAL}/ops-new", json=body), message)

    listed = (await client.get("/api/v1/app/acme/endpoint")).json()["data"]
    assert [(e["uid"], e["url"]) for e in listed] == [("ep", "https://example.com/hook")]
    assert (await client.get(OPERATIONAL)).json()["data"] == []


async def test_https_urls_on_allowed_ports_are_accepted_everywhere(
    client: httpx.AsyncClient,
) -> None:
    ok = {"url": "https://example.com:8443/hook"}
    assert (await client.post("/api/v1/app/acme/endpoint", json=ok)).status_code == 201
    assert (await client.put("/api/v1/app/acme/endpoint/ep", json=ok)).status_code == 200
    patched = await client.patch("/api/v1/app/acme/endpoint/ep", json={"description": "d"})
    assert patched.status_code == 200, "a patch that leaves the url alone is not judged"
    assert (await client.post(OPERATIONAL, json=ok)).status_code == 201


@pytest.mark.parametrize(
    ("env", "url", "reason"),
    [
        (
            {"HOOKLINE_ENDPOINT_HTTPS_ONLY": "true"},
            "http://192.0.2.10/hook",
            "refused: only https:// destinations are allowed (HOOKLINE_ENDPOINT_HTTPS_ONLY)",
        ),
        (
            {"HOOKLINE_OUTBOUND_ALLOW_PORTS": "443"},
            "https://192.0.2.10:8443/hook",
            "blocked by destination policy: port 8443 is not in HOOKLINE_OUTBOUND_ALLOW_PORTS",
        ),
    ],
)
async def test_the_transport_the_settings_build_refuses_urls_saved_before_a_rule(
    env: dict[str, str], url: str, reason: str
) -> None:
    """An endpoint saved before the rule was turned on keeps its URL; its deliveries are
    refused by the transport ``serve`` builds from the same settings, before any lookup.
    (A documentation address: were the rule not applied, the SSRF guard would still stop
    the attempt here, with another reason, and nothing would leave the machine.)"""
    transport = transport_for(load_settings(environ=env))
    try:
        result = await transport.post(url, b"{}", {}, 5.0)
    finally:
        await transport.close()
    assert (result.status_code, result.error) == (0, reason)


@pytest.mark.parametrize(
    ("url", "message"),
    [("http://auth.example.com/token", HTTPS_ONLY), ("https://auth.example.com:22/t", PORT_DENIED)],
)
async def test_an_oauth_token_url_obeys_the_same_rules(
    client: httpx.AsyncClient, url: str, message: str
) -> None:
    """The token request goes out through the same transport as a delivery, so its URL is
    refused by the same rules, naming ``tokenUrl``, and nothing is stored."""
    oauth = {
        "authMethod": "clientSecretBasic",
        "clientId": "c",
        "clientSecret": "s",
        "grantType": "clientCredentials",
        "tokenUrl": url,
    }
    r = await client.put("/api/v1/app/acme/endpoint/ep/oauth", json=oauth)
    assert r.status_code == 422, r.text
    assert message in r.text and r.json()["detail"][0]["loc"] == ["body", "tokenUrl"]
    assert (await client.get("/api/v1/app/acme/endpoint/ep/oauth")).status_code == 404
