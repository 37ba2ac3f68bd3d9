"""The API's abuse limits in process (``api/limits.py``): failed authentications, per-token
and per-address rates, the address allowlist. Client addresses are set per client through
httpx's ASGI transport; the connection-level limits need real sockets (tests/e2e)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore

ADMIN_TOKEN = "hl_admin_limits-test-token-long-enough-for-the-rule"
Clients = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[Clients]]]:
    """Builds the real app with the given settings; yields a factory of clients, each with
    its own client address and bearer token."""
    store = SqliteStore(str(tmp_path / "limits.db"))
    await store.open()

    async def build(**overrides: str) -> Clients:
        settings = load_settings({"admin_token": ADMIN_TOKEN, **overrides}, environ={})
        await ensure_admin_token(store, settings)
        app = create_app(Services(ops=Operations(store), settings=settings))

        @asynccontextmanager
        async def client(
            address: str, token: str = ADMIN_TOKEN
        ) -> AsyncIterator[httpx.AsyncClient]:
            transport = httpx.ASGITransport(app=app, client=(address, 40000))
            async with httpx.AsyncClient(
                transport=transport,
                base_url="http://hookline",
                headers={"authorization": f"Bearer {token}"},
            ) as opened:
                yield opened

        return client

    yield build
    await store.close()


def assert_limited(response: httpx.Response, detail: str) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["code"] == "rate_limited"
    assert detail in response.json()["detail"]
    assert int(response.headers["retry-after"]) >= 1


async def test_token_guessing_gets_429_before_any_token_is_checked(
    server: Callable[..., Awaitable[Clients]],
) -> None:
    """An address guessing tokens gets 401 for its burst of failures (1/s x 10 s by
    default), then 429 with Retry-After for every guess, and then even for the right
    token, so the answers stop telling right from wrong; other addresses are unaffected."""
    client = await server()
    statuses = []
    for _ in range(30):
        async with client("203.0.113.7", "hl_admin_" + secrets.token_urlsafe(8)) as guesser:
            response = await guesser.get("/api/v1/app")
        statuses.append(response.status_code)
    assert statuses == [401] * 10 + [429] * 20
    assert_limited(response, "Too many failed authentications from this address")
    async with client("203.0.113.7") as same_address:
        assert_limited(await same_address.get("/api/v1/app"), "failed authentications")
    async with client("198.51.100.1") as elsewhere:
        assert (await elsewhere.get("/api/v1/app")).status_code == 200


async def test_an_ipv6_guesser_is_counted_by_its_64(
    server: Callable[..., Awaitable[Clients]],
) -> None:
    """Changing the last 64 bits of the address does not buy a fresh budget."""
    client = await server(api_auth_failure_rate="1", api_burst_seconds="3")
    statuses = []
    for i in range(6):
        async with client(f"2001:db8::{i + 1}", "wrong") as guesser:
            statuses.append((await guesser.get("/api/v1/app")).status_code)
    assert statuses == [401, 401, 401, 429, 429, 429]


async def test_an_application_token_is_held_to_its_rate_and_admin_tokens_are_not(
    server: Callable[..., Awaitable[Clients]],
) -> None:
    """Past its burst an application-scoped token gets 429 with Retry-After; the admin
    token, unlimited by default, goes on."""
    client = await server(api_token_rate="1", api_burst_seconds="3")
    async with client("192.0.2.10") as admin:
        assert (await admin.post("/api/v1/app", json={"name": "a", "uid": "a"})).status_code == 201
        portal = await admin.post("/api/v1/auth/app-portal-access/a", json={})
        scoped = portal.json()["token"]
    async with client("192.0.2.10", scoped) as app_client:
        statuses = [(await app_client.get("/api/v1/app/a")).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        assert_limited(await app_client.get("/api/v1/app/a"), "Too many requests with this token")
    async with client("192.0.2.10") as admin:
        assert {(await admin.get("/api/v1/app/a")).status_code for _ in range(20)} == {200}


async def test_admin_tokens_have_their_own_rate(server: Callable[..., Awaitable[Clients]]) -> None:
    """HOOKLINE_API_ADMIN_RATE limits admin tokens when it is set."""
    client = await server(api_admin_rate="1", api_burst_seconds="2")
    async with client("192.0.2.10") as admin:
        statuses = [(await admin.get("/api/v1/app")).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


async def test_an_address_is_held_to_its_rate_when_one_is_set(
    server: Callable[..., Awaitable[Clients]],
) -> None:
    """HOOKLINE_API_ADDRESS_RATE counts every token-bearing request of one address."""
    client = await server(api_address_rate="1", api_burst_seconds="2")
    async with client("192.0.2.20") as first:
        statuses = [(await first.get("/api/v1/app")).status_code for _ in range(3)]
        assert_limited(await first.get("/api/v1/app"), "Too many requests from this address")
    assert statuses == [200, 200, 429]
    async with client("192.0.2.21") as other:
        assert (await other.get("/api/v1/app")).status_code == 200


async def test_the_allowlist_refuses_other_addresses_with_403_and_keeps_health_open(
    server: Callable[..., Awaitable[Clients]],
) -> None:
    """With HOOKLINE_API_ALLOW_NETWORKS set, a valid token from outside the networks gets
    403 ``address_not_allowed`` and changes nothing; inside (IPv4-mapped spellings too)
    it works; the public health routes answer everyone."""
    client = await server(api_allow_networks="10.0.0.0/8,fd00::/8")
    async with client("192.0.2.30") as outsider:
        refused = await outsider.post("/api/v1/app", json={"name": "x", "uid": "x"})
        assert (refused.status_code, refused.json()["code"]) == (403, "address_not_allowed")
        assert (await outsider.get("/health/ping")).status_code == 200
    for inside in ("10.2.3.4", "::ffff:10.2.3.4", "fd00::1"):
        async with client(inside) as insider:
            listed = await insider.get("/api/v1/app")
            assert listed.status_code == 200, inside
            assert [a["uid"] for a in listed.json()["data"]] == []


async def test_limits_off_refuse_nothing(server: Callable[..., Awaitable[Clients]]) -> None:
    """With every rate at 0, a hundred failed and a hundred good requests all get their
    ordinary answers."""
    client = await server(api_token_rate="0", api_auth_failure_rate="0")
    async with client("203.0.113.9", "wrong") as guesser:
        assert {(await guesser.get("/api/v1/app")).status_code for _ in range(100)} == {401}
    async with client("203.0.113.9") as admin:
        assert {(await admin.get("/api/v1/app")).status_code for _ in range(100)} == {200}
