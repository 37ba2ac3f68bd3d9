"""The SSRF-guarded aiohttp transport against a real HTTP server on loopback."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web

from hookline.delivery.transport import RESPONSE_BODY_LIMIT_BYTES, AiohttpTransport, SsrfPolicy


@dataclass
class Server:
    port: int
    seen: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    state = Server(0)

    async def record(request: web.Request) -> web.Response:
        state.seen.append((request.path, await request.read(), dict(request.headers)))
        return web.Response(status=200, text="ok")

    async def redirect(request: web.Request) -> web.Response:
        state.seen.append((request.path, await request.read(), dict(request.headers)))
        raise web.HTTPFound("/ok")

    async def throttled(request: web.Request) -> web.Response:
        return web.Response(status=429, headers={"Retry-After": "30"})

    async def big(request: web.Request) -> web.Response:
        return web.Response(status=500, body=b"x" * 100_000)

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1)
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/ok", record)
    app.router.add_post("/redirect", redirect)
    app.router.add_post("/throttled", throttled)
    app.router.add_post("/big", big)
    app.router.add_post("/slow", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.port = runner.addresses[0][1]
    yield state
    await runner.cleanup()


@pytest.fixture
async def dev() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport(SsrfPolicy(allow_private=True))
    yield transport
    await transport.close()


@pytest.fixture
async def guarded() -> AsyncIterator[AiohttpTransport]:
    transport = AiohttpTransport(SsrfPolicy())
    yield transport
    await transport.close()


async def test_post_sends_exact_body_and_headers(server: Server, dev: AiohttpTransport) -> None:
    """The body bytes and custom headers arrive unchanged, with the original Host header."""
    result = await dev.post(
        f"http://localhost:{server.port}/ok", b'{"a": 1}', {"x-team": "core"}, 5
    )
    assert (result.status_code, result.body, result.error) == (200, b"ok", None)
    path, body, headers = server.seen[0]
    assert (path, body) == ("/ok", b'{"a": 1}')
    assert headers["x-team"] == "core"
    assert headers["Host"] == f"localhost:{server.port}"
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"].startswith("hookline/")


async def test_redirect_is_returned_not_followed(server: Server, dev: AiohttpTransport) -> None:
    """A 302 is reported as such and the Location is never requested."""
    result = await dev.post(f"http://127.0.0.1:{server.port}/redirect", b"{}", {}, 5)
    assert result.status_code == 302
    assert [p for p, _, _ in server.seen] == ["/redirect"]


async def test_retry_after_and_capped_body(server: Server, dev: AiohttpTransport) -> None:
    """Retry-After is surfaced, and a large response body is cut at 20 KB."""
    throttled = await dev.post(f"http://127.0.0.1:{server.port}/throttled", b"{}", {}, 5)
    assert (throttled.status_code, throttled.retry_after) == (429, "30")
    big = await dev.post(f"http://127.0.0.1:{server.port}/big", b"{}", {}, 5)
    assert big.status_code == 500 and len(big.body) == RESPONSE_BODY_LIMIT_BYTES


async def test_timeout_and_refused_connection_give_status_zero(
    server: Server, dev: AiohttpTransport
) -> None:
    """A timeout and a refused connection are status 0 with a readable reason."""
    slow = await dev.post(f"http://127.0.0.1:{server.port}/slow", b"{}", {}, 0.2)
    assert slow.status_code == 0 and slow.error == "timeout after 0.2s"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    refused = await dev.post(f"http://127.0.0.1:{closed_port}/", b"{}", {}, 2)
    assert (refused.status_code, refused.error) == (0, "connection refused")


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "blocked by SSRF guard"),
        ("localhost", "blocked by SSRF guard"),
        ("0x7f.1", "blocked by SSRF guard"),
        ("[::ffff:127.0.0.1]", "blocked by SSRF guard"),
        ("[::1]", "blocked by SSRF guard"),
        ("127.1", "invalid URL: 127.1 - is not a canonical IPv4 address"),
        ("2130706433", "invalid URL: 2130706433 - is not a canonical IPv4 address"),
    ],
)
async def test_guard_blocks_loopback_in_every_spelling(
    server: Server, guarded: AiohttpTransport, host: str, reason: str
) -> None:
    """Every spelling of loopback is refused (by the guard, or as a non-canonical address)."""
    result = await guarded.post(f"http://{host}:{server.port}/ok", b"{}", {}, 2)
    assert result.status_code == 0
    assert result.error is not None and result.error.startswith(reason)
    assert server.seen == []


@pytest.mark.parametrize("host", ["127.1", "2130706433"])
async def test_non_canonical_loopback_is_refused_even_in_dev_mode(
    server: Server, dev: AiohttpTransport, host: str
) -> None:
    """Numeric spellings like 127.1 never connect, even where loopback is allowed."""
    result = await dev.post(f"http://{host}:{server.port}/ok", b"{}", {}, 2)
    assert result.status_code == 0
    assert server.seen == []


async def test_allow_networks_lets_a_listed_range_through(server: Server) -> None:
    """An address inside HOOKLINE_ALLOW_NETWORKS is reachable without --dev."""
    transport = AiohttpTransport(SsrfPolicy(allow_networks=(ipaddress.ip_network("127.0.0.0/8"),)))
    try:
        result = await transport.post(f"http://127.0.0.1:{server.port}/ok", b"{}", {}, 5)
    finally:
        await transport.close()
    assert result.status_code == 200


@pytest.mark.parametrize("url", ["ftp://example.com/x", "not a url", "http://", "/relative"])
async def test_invalid_urls_are_refused(guarded: AiohttpTransport, url: str) -> None:
    """Non-http schemes and malformed URLs are status 0 with 'invalid URL'."""
    result = await guarded.post(url, b"{}", {}, 2)
    assert result.status_code == 0
    assert result.error is not None and result.error.startswith("invalid URL")
