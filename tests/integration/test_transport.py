"""The transport's contract against real listeners on 127.0.0.1: the SSRF guard, what is
sent, and how every kind of answer (or lack of one) becomes an ``HttpResult``.

What only the connection pool has to prove is in ``test_asyncio_transport.py``, and the
per-request options (deadline, byte cap, TLS) in ``test_transport_options.py``.

Refused destinations point at a tripwire: a bare TCP listener that records every connection
it accepts. After a refusal, a sentinel connection is made and awaited; accepts are FIFO, so
once the sentinel is seen any connection the transport had made would have been seen too.
Host names other than ``localhost`` are served by a fake ``getaddrinfo``, so no query leaves
the machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from multidict import CIMultiDict

import hookline
from hookline.transport import (
    RESPONSE_BODY_LIMIT_BYTES,
    AsyncioTransport,
    HttpResult,
    SsrfPolicy,
    Transport,
)
from tests.integration.certificates import self_signed_certificate

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@dataclass
class Seen:
    path: str
    body: bytes
    headers: CIMultiDict[str]


@dataclass
class Server:
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@dataclass
class Tripwire:
    port: int
    accepted: asyncio.Queue[int]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    """An aiohttp.web app on an ephemeral loopback port that records every request."""
    state = Server()

    async def record(request: web.Request) -> None:
        state.requests.append(Seen(request.path, await request.read(), request.headers.copy()))

    async def echo(request: web.Request) -> web.Response:
        await record(request)
        return web.json_response({k: v for k, v in request.headers.items()})

    async def redirect(request: web.Request) -> web.Response:
        await record(request)
        raise web.HTTPFound("/echo")

    async def throttled(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=429, headers={"Retry-After": "120"})

    async def big(request: web.Request) -> web.Response:
        await record(request)
        return web.Response(status=500, body=b"x" * 100 * 1024)

    async def slow(request: web.Request) -> web.Response:
        await record(request)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await state.release.wait()
        return web.Response(text="late")

    async def closing(request: web.Request) -> web.Response:
        await record(request)
        response = web.Response(text="ok")
        response.force_close()
        return response

    app = web.Application()
    for path, handler in [
        ("/echo", echo),
        ("/redirect", redirect),
        ("/throttled", throttled),
        ("/big", big),
        ("/slow", slow),
        ("/closing", closing),
    ]:
        app.router.add_post(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    state.port = runner.addresses[0][1]
    yield state
    state.release.set()
    await runner.cleanup()


@pytest.fixture
async def tripwire() -> AsyncIterator[Tripwire]:
    """A bare TCP listener on loopback that records the peer port of every connection."""
    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer.get_extra_info("peername")[1])
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    yield Tripwire(listener.sockets[0].getsockname()[1], accepted)
    listener.close()
    await listener.wait_closed()


async def assert_untouched(wire: Tripwire) -> None:
    """Fail if anything but a fresh sentinel connection reached the tripwire."""
    _, writer = await asyncio.open_connection("127.0.0.1", wire.port)
    sentinel = writer.get_extra_info("sockname")[1]
    others: list[int] = []
    try:
        async with asyncio.timeout(5):
            while (peer := await wire.accepted.get()) != sentinel:
                others.append(peer)
    finally:
        writer.close()
        await writer.wait_closed()
    assert others == [], "the transport opened a connection it should have refused"


FakeAnswers = dict[str, list[str]]


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> FakeAnswers:
    """Answers getaddrinfo for the names in the returned dict; other names resolve for real."""
    answers: FakeAnswers = {}
    loop = asyncio.get_running_loop()
    real: Callable[..., Awaitable[Any]] = loop.getaddrinfo

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        if host not in answers:
            return list(await real(host, port, **kwargs))
        if not answers[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[Any] = []
        for ip in answers[host]:
            if ":" in ip:
                infos.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (ip, port, 0, 0)))
            else:
                infos.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)))
        return infos

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
async def dev() -> AsyncIterator[Transport]:
    """A transport in dev mode: private and loopback destinations are allowed."""
    transport = AsyncioTransport(SsrfPolicy(allow_private=True))
    yield transport
    await transport.close()


@pytest.fixture
async def strict() -> AsyncIterator[Transport]:
    """A transport with the default policy: only public destinations."""
    transport = AsyncioTransport(SsrfPolicy())
    yield transport
    await transport.close()


@pytest.fixture
async def loopback_allowed() -> AsyncIterator[Transport]:
    """A transport whose policy lists 127.0.0.0/8 in allow_networks, without dev mode."""
    transport = AsyncioTransport(SsrfPolicy(allow_networks=LOOPBACK))
    yield transport
    await transport.close()


def assert_refused(result: HttpResult, prefix: str) -> None:
    assert result.status_code == 0
    assert result.error is not None and result.error.startswith(prefix), result.error
    assert (result.body, result.retry_after) == (b"", None)


async def test_post_delivers_exact_body_headers_and_host(server: Server, dev: Transport) -> None:
    """The body bytes and caller headers arrive unchanged, with Host, User-Agent, JSON type."""
    body = b'{"type":"user.created","data":{"name":"\xc3\xa9"}}'
    result = await dev.post(
        server.url("/echo", host="localhost"), body, {"webhook-id": "msg_1", "X-Team": "a"}, 5
    )
    assert (result.status_code, result.error, result.retry_after) == (200, None, None)
    assert result.duration_ms >= 0
    (seen,) = server.requests
    assert (seen.path, seen.body) == ("/echo", body)
    assert seen.headers["webhook-id"] == "msg_1"
    assert seen.headers["X-Team"] == "a"
    assert seen.headers.getall("Host") == [f"localhost:{server.port}"]
    assert seen.headers.getall("User-Agent") == [f"hookline/{hookline.__version__}"]
    assert seen.headers.getall("Content-Type") == ["application/json"]
    assert "Accept-Encoding" not in seen.headers
    assert json.loads(result.body)["webhook-id"] == "msg_1"


async def test_caller_headers_replace_defaults_case_insensitively(
    server: Server, dev: Transport
) -> None:
    """A caller's User-Agent or Content-Type, in any case, replaces the default: one of each."""
    headers = {"user-agent": "custom/2", "content-type": "application/cloudevents+json"}
    result = await dev.post(server.url("/echo"), b"{}", headers, 5)
    assert result.status_code == 200
    (seen,) = server.requests
    assert seen.headers.getall("User-Agent") == ["custom/2"]
    assert seen.headers.getall("Content-Type") == ["application/cloudevents+json"]


async def test_redirect_is_returned_not_followed(server: Server, dev: Transport) -> None:
    """A 302 is the result, and its Location is never requested."""
    result = await dev.post(server.url("/redirect"), b"{}", {}, 5)
    assert (result.status_code, result.error) == (302, None)
    assert [seen.path for seen in server.requests] == ["/redirect"]


async def test_retry_after_is_surfaced_raw(server: Server, dev: Transport) -> None:
    """The Retry-After header of a 429 comes back as the raw string."""
    result = await dev.post(server.url("/throttled"), b"{}", {}, 5)
    assert (result.status_code, result.retry_after) == (429, "120")


async def test_response_body_is_capped(server: Server, dev: Transport) -> None:
    """A 100 KB body is cut at 20 KB, and the cut connection does not poison the pool."""
    big = await dev.post(server.url("/big"), b"{}", {}, 5)
    assert big.status_code == 500
    assert big.body == b"x" * RESPONSE_BODY_LIMIT_BYTES
    after = await dev.post(server.url("/echo"), b"{}", {}, 5)
    assert (after.status_code, after.error) == (200, None)


async def test_timeout_gives_status_zero(server: Server, dev: Transport) -> None:
    """A handler slower than the timeout yields status 0 'timeout after 0.2s', not a wait."""
    result = await dev.post(server.url("/slow"), b"{}", {}, 0.2)
    assert_refused(result, "timeout after 0.2s")
    assert 150 <= result.duration_ms < 4000


async def test_refused_connection_gives_status_zero(dev: Transport) -> None:
    """A closed loopback port yields status 0 'connection refused'."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    result = await dev.post(f"http://127.0.0.1:{closed_port}/", b"{}", {}, 5)
    assert (result.status_code, result.error) == (0, "connection refused")


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "127.1",
        "2130706433",
        "0x7f.1",
        "[::ffff:127.0.0.1]",
        "[::1]",
    ],
)
async def test_default_policy_blocks_every_spelling_of_loopback(
    tripwire: Tripwire, strict: Transport, host: str
) -> None:
    """Loopback in any spelling is 'blocked by SSRF guard' and no connection is opened."""
    result = await strict.post(f"http://{host}:{tripwire.port}/hook", b"{}", {}, 5)
    assert_refused(result, "blocked by SSRF guard: ")
    assert result.error is not None and "loopback" in result.error
    await assert_untouched(tripwire)


async def test_one_denied_address_blocks_the_whole_host(
    tripwire: Tripwire, loopback_allowed: Transport, fake_dns: FakeAnswers
) -> None:
    """A name resolving to an allowed and a denied address is refused outright."""
    fake_dns["mixed.test"] = ["127.0.0.1", "10.0.0.7"]
    result = await loopback_allowed.post(f"http://mixed.test:{tripwire.port}/", b"{}", {}, 5)
    assert_refused(result, "blocked by SSRF guard: ")
    assert result.error is not None and "10.0.0.7" in result.error
    await assert_untouched(tripwire)


async def test_allow_networks_lets_loopback_through(
    server: Server, loopback_allowed: Transport
) -> None:
    """With 127.0.0.0/8 in allow_networks, loopback literals and localhost are delivered."""
    for host in ("127.0.0.1", "localhost"):
        result = await loopback_allowed.post(server.url("/echo", host=host), b"{}", {}, 5)
        assert (result.status_code, result.error) == (200, None)
    assert len(server.requests) == 2


async def test_connects_to_the_vetted_address_and_revets_new_connections(
    server: Server, loopback_allowed: Transport, fake_dns: FakeAnswers
) -> None:
    """The resolved address is dialled with the original Host; a rebind is caught next time."""
    fake_dns["rebind.test"] = ["127.0.0.1"]
    url = server.url("/closing", host="rebind.test")
    first = await loopback_allowed.post(url, b"{}", {}, 5)
    assert (first.status_code, first.error) == (200, None)
    assert server.requests[0].headers["Host"] == f"rebind.test:{server.port}"
    fake_dns["rebind.test"] = ["169.254.169.254"]
    second = await loopback_allowed.post(url, b"{}", {}, 5)
    assert_refused(second, "blocked by SSRF guard: ")
    assert len(server.requests) == 1


async def test_unresolvable_host_gives_status_zero(
    strict: Transport, fake_dns: FakeAnswers
) -> None:
    """A name that does not resolve is status 0 with a DNS reason, not an exception."""
    fake_dns["nowhere.test"] = []
    result = await strict.post("http://nowhere.test/hook", b"{}", {}, 5)
    assert_refused(result, "DNS resolution failed")


@pytest.mark.parametrize("host", ["127.1", "2130706433"])
async def test_non_canonical_literals_are_never_dialled_even_in_dev_mode(
    tripwire: Tripwire, dev: Transport, host: str
) -> None:
    """Where loopback is allowed, 127.1-style spellings are still refused as invalid URLs."""
    result = await dev.post(f"http://{host}:{tripwire.port}/", b"{}", {}, 5)
    assert_refused(result, "invalid URL")
    await assert_untouched(tripwire)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://127.0.0.1/x", "invalid URL: scheme must be http or https"),
        ("file:///etc/passwd", "invalid URL: scheme must be http or https"),
        ("not a url", "invalid URL"),
        ("/relative/path", "invalid URL"),
        ("http://", "invalid URL"),
        ("http://[::1/x", "invalid URL"),
        ("http://example.com:99999/", "invalid URL"),
    ],
)
async def test_invalid_urls_are_refused(strict: Transport, url: str, reason: str) -> None:
    """Non-http(s) schemes and malformed URLs are status 0 with an 'invalid URL' reason."""
    assert_refused(await strict.post(url, b"{}", {}, 5), reason)


@pytest.fixture
async def raw_server() -> AsyncIterator[Callable[[bytes, bool], Awaitable[int]]]:
    """Start listeners that read one request and write fixed bytes, then close or stall.

    The factory takes the response bytes and whether to stall after writing them (until the
    test ends) instead of closing, and returns the port.
    """
    stop = asyncio.Event()
    listeners: list[asyncio.Server] = []

    async def start(response: bytes, stall: bool) -> int:
        async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            head = await reader.readuntil(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    await reader.readexactly(int(value))
            writer.write(response)
            await writer.drain()
            if stall:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await stop.wait()
            writer.close()

        listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
        listeners.append(listener)
        port: int = listener.sockets[0].getsockname()[1]
        return port

    yield start
    stop.set()
    for listener in listeners:
        listener.close()
        await listener.wait_closed()


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not ipv6_loopback(), reason="this machine has no IPv6 loopback")
async def test_an_ipv6_literal_is_dialled_over_ipv6_with_a_bracketed_host(dev: Transport) -> None:
    """``http://[::1]:port/`` reaches a listener on ::1 (where dev mode allows loopback), and
    the Host header keeps the brackets."""
    heads: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(on_connect, "::1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        result = await dev.post(f"http://[::1]:{port}/v6", b"{}", {}, 5)
    finally:
        listener.close()
        await listener.wait_closed()
    assert (result.status_code, result.error) == (204, None)
    (head,) = heads
    assert head.startswith(b"POST /v6 HTTP/1.1\r\n")
    assert f"\r\nhost: [::1]:{port}\r\n".encode() in head.lower()


async def test_proxies_from_the_environment_are_ignored(
    server: Server, tripwire: Tripwire, dev: Transport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """http_proxy and friends point at the tripwire; the request still goes direct."""
    proxy = f"http://127.0.0.1:{tripwire.port}"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy"):
        monkeypatch.setenv(name, proxy)
    monkeypatch.setenv("ALL_PROXY", proxy)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    for host in ("127.0.0.1", "localhost"):
        result = await dev.post(server.url("/echo", host=host), b"{}", {}, 5)
        assert (result.status_code, result.error) == (200, None)
    assert len(server.requests) == 2
    await assert_untouched(tripwire)


async def test_large_binary_body_arrives_intact_without_expect(
    server: Server, dev: Transport
) -> None:
    """A 256 KB body with every byte value arrives unchanged, with no Expect: 100-continue."""
    body = bytes(range(256)) * 1024
    result = await dev.post(server.url("/echo"), body, {}, 5)
    assert (result.status_code, result.error) == (200, None)
    (seen,) = server.requests
    assert seen.body == body
    assert "Expect" not in seen.headers
    assert seen.headers["Content-Length"] == str(len(body))


async def test_empty_body_and_empty_header_value(server: Server, dev: Transport) -> None:
    """An empty body is a POST with Content-Length 0; an empty header value is sent empty."""
    result = await dev.post(server.url("/echo"), b"", {"X-Empty": "", "X-Blank": "  "}, 5)
    assert (result.status_code, result.error) == (200, None)
    (seen,) = server.requests
    assert seen.body == b""
    assert seen.headers.getall("X-Empty") == [""]
    assert seen.headers.getall("X-Blank") == [""]


@pytest.mark.parametrize(
    "headers",
    [{"X-Team": "a\r\nX-Injected: 1"}, {"X-Team\nX-Injected": "1"}, {"X-Team": "a\x00b"}],
)
async def test_control_characters_in_headers_are_refused(
    server: Server, dev: Transport, headers: dict[str, str]
) -> None:
    """A line break or NUL in a header name or value is refused, never sent."""
    result = await dev.post(server.url("/echo"), b"{}", headers, 5)
    assert_refused(result, "ValueError: Forbidden control character detected in headers")
    assert server.requests == []


async def test_informational_response_is_skipped(
    raw_server: Callable[[bytes, bool], Awaitable[int]], dev: Transport
) -> None:
    """A 103 before the answer is not the result; the final status and Retry-After are."""
    port = await raw_server(
        b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\nRetry-After: 1\r\n\r\n"
        b"HTTP/1.1 503 Unavailable\r\nRetry-After: 30\r\nRetry-After: 60\r\n"
        b"Content-Length: 4\r\n\r\nbusy",
        False,
    )
    result = await dev.post(f"http://127.0.0.1:{port}/", b"{}", {}, 5)
    assert (result.status_code, result.error, result.body) == (503, None, b"busy")
    assert result.retry_after == "30"


@pytest.mark.parametrize(
    "response",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello world",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello world",
    ],
    ids=["chunked", "http-1.0-until-close", "until-close"],
)
async def test_bodies_framed_by_chunks_or_by_closing_are_read_whole(
    raw_server: Callable[[bytes, bool], Awaitable[int]], dev: Transport, response: bytes
) -> None:
    """A chunked body is decoded, and a body without a length ends where the peer closes."""
    port = await raw_server(response, False)
    result = await dev.post(f"http://127.0.0.1:{port}/", b"{}", {}, 5)
    assert (result.status_code, result.error, result.body) == (200, None, b"hello world")


async def test_body_cut_short_by_the_peer_keeps_the_status(
    raw_server: Callable[[bytes, bool], Awaitable[int]], dev: Transport
) -> None:
    """Once the status line and headers are in, a body the peer cut short by closing still
    gives that status."""
    port = await raw_server(
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\nRetry-After: 5\r\n\r\npartial",
        False,
    )
    result = await dev.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.5)
    assert (result.status_code, result.error, result.retry_after) == (202, None, "5")
    assert b"partial".startswith(result.body)
    assert result.duration_ms < 4000


async def test_a_body_unfinished_at_the_deadline_is_a_timeout(
    raw_server: Callable[[bytes, bool], Awaitable[int]], dev: Transport
) -> None:
    """Headers in time do not excuse a body that never ends: when the deadline passes
    first, the attempt is a timeout (status 0), as silence would be (issue 14)."""
    port = await raw_server(
        b"HTTP/1.1 202 Accepted\r\nContent-Length: 100\r\nRetry-After: 5\r\n\r\npartial",
        True,
    )
    result = await dev.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.5)
    assert (result.status_code, result.error, result.body) == (0, "timeout after 0.5s", b"")
    assert 450 <= result.duration_ms < 4000


@pytest.mark.parametrize(
    ("response", "reason"),
    [
        (b"", "server disconnected without a response"),
        (b"HTTP/1.1 200 OK\r\nContent-Le", "server disconnected without a response"),
        (b"HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", "invalid HTTP response"),
    ],
    ids=["no-answer", "headers-cut", "bad-status"],
)
async def test_no_complete_answer_gives_status_zero(
    raw_server: Callable[[bytes, bool], Awaitable[int]],
    dev: Transport,
    response: bytes,
    reason: str,
) -> None:
    """A peer that hangs up before the end of the headers, or a malformed status line, is
    no response at all: status 0 with the reason."""
    port = await raw_server(response, False)
    result = await dev.post(f"http://127.0.0.1:{port}/", b"{}", {}, 5)
    assert_refused(result, reason)


async def test_untrusted_certificate_gives_a_tls_error(tmp_path: Path, dev: Transport) -> None:
    """TLS is verified: a self-signed certificate is status 0 'TLS certificate error'."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_certificate(tmp_path))
    requests: list[bytes] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            requests.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0, ssl=context)
    port = listener.sockets[0].getsockname()[1]
    try:
        for host in ("localhost", "127.0.0.1"):
            result = await dev.post(f"https://{host}:{port}/hook", b"{}", {}, 5)
            assert_refused(result, "TLS certificate error")
    finally:
        listener.close()
        await listener.wait_closed()
    assert requests == []
