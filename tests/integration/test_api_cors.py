"""CORS for the origins in ``HOOKLINE_CORS_ORIGINS`` (``api/cors.py``): a page there may call
the API with a token it holds (a portal token, say, in a UI built on svix-react); a page of
any other origin gets no CORS header, so its browser refuses the answer. In process through
httpx's ASGI transport; tests/browser checks a real browser obeys it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import ConfigError, load_settings
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.sqlite import SqliteStore

ADMIN_TOKEN = "hl_admin_cors-test-token-long-enough-for-the-rule"
ALLOWED = "https://dashboard.example"
OTHER = "https://evil.example"
Build = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Build]:
    """The real app with ``HOOKLINE_CORS_ORIGINS`` as given; a client with the admin token."""
    store = SqliteStore(str(tmp_path / "cors.db"))
    await store.open()
    clients: list[httpx.AsyncClient] = []

    async def build(origins: str) -> httpx.AsyncClient:
        settings = load_settings({"admin_token": ADMIN_TOKEN, "cors_origins": origins}, environ={})
        await ensure_admin_token(store, settings)
        app = create_app(Services(ops=Operations(store), settings=settings))
        client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://hookline",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()
    await store.close()


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "origin": origin,
        "access-control-request-method": method,
        "access-control-request-headers": "authorization, content-type",
    }


async def test_without_configured_origins_no_cors_header_is_ever_sent(api: Build) -> None:
    """By default a cross-origin call gets its answer with no CORS header (the browser
    refuses it) and a preflight is the API's 405, as for any OPTIONS."""
    client = await api("")
    r = await client.get("/api/v1/app", headers={"origin": ALLOWED})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    r = await client.options("/api/v1/app", headers=preflight(ALLOWED))
    assert r.status_code == 405
    assert "access-control-allow-origin" not in r.headers


async def test_a_preflight_from_an_allowed_origin_is_answered_without_a_token(
    api: Build,
) -> None:
    """Browsers send no token with a preflight: it is answered 204, before routing and
    authentication, with the methods and headers the SDKs send and a cache lifetime."""
    client = await api(f"{ALLOWED} https://other.example")
    r = await client.options(
        "/api/v1/app/app_x/msg", headers={**preflight(ALLOWED), "authorization": ""}
    )
    assert r.status_code == 204, r.text
    assert r.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in r.headers["access-control-allow-methods"]
    allowed_headers = r.headers["access-control-allow-headers"]
    assert "authorization" in allowed_headers and "idempotency-key" in allowed_headers
    assert r.headers["access-control-max-age"] == "600"
    assert r.headers["vary"] == "origin"
    assert "access-control-allow-credentials" not in r.headers


async def test_a_preflight_from_another_origin_is_refused_with_a_reason(api: Build) -> None:
    """403 with a JSON error naming the setting, and no CORS header."""
    client = await api(ALLOWED)
    r = await client.options("/api/v1/app", headers=preflight(OTHER))
    assert r.status_code == 403
    assert r.json()["code"] == "cors_origin_not_allowed"
    assert "HOOKLINE_CORS_ORIGINS" in r.json()["detail"]
    assert "access-control-allow-origin" not in r.headers


async def test_answers_to_an_allowed_origin_carry_cors_headers_errors_included(
    api: Build,
) -> None:
    """A success and an error (401, so the page can read why) both name the origin and
    expose the request id; an answer to another origin names none. The origin is matched
    whatever its case."""
    client = await api(ALLOWED)
    created = await client.post(
        "/api/v1/app", json={"name": "Acme"}, headers={"origin": ALLOWED.upper()}
    )
    assert created.status_code == 201
    assert created.headers["access-control-allow-origin"] == ALLOWED.upper()
    assert "x-request-id" in created.headers["access-control-expose-headers"]
    refused = await client.get(
        "/api/v1/app", headers={"origin": ALLOWED, "authorization": "Bearer hl_app_wrong"}
    )
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == ALLOWED
    other = await client.get("/api/v1/app", headers={"origin": OTHER})
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


async def test_any_origin_is_answered_with_a_wildcard_never_with_credentials(
    api: Build,
) -> None:
    """``*`` allows every origin with ``Access-Control-Allow-Origin: *``, which browsers
    never combine with cookies: tokens are the only credential."""
    client = await api("*")
    r = await client.options("/api/v1/app", headers=preflight(OTHER, "GET"))
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "*"
    r = await client.get("/api/v1/app", headers={"origin": OTHER})
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example/",
        "https://a.example/path",
        "ftp://a.example",
        "a.example",
        "* https://a.example",
    ],
)
def test_a_setting_that_is_not_a_list_of_origins_stops_the_start(value: str) -> None:
    """Paths, other schemes, bare hosts and a wildcard beside origins are refused, naming
    the setting."""
    with pytest.raises(ConfigError, match="HOOKLINE_CORS_ORIGINS"):
        load_settings(environ={"HOOKLINE_CORS_ORIGINS": value})


def test_origins_are_normalised_to_lowercase_and_listed_once() -> None:
    """Commas or spaces separate them; case and repeats do not matter."""
    settings = load_settings(
        environ={"HOOKLINE_CORS_ORIGINS": "https://A.example, https://a.example http://[::1]:8080"}
    )
    assert settings.cors_origins == ("https://a.example", "http://[::1]:8080")
