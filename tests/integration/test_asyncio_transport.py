"""What the asyncio transport's own connection pool proves beyond the contract in
``test_transport.py``: one connection for a run of requests and for concurrent ones,
re-vetting of every new connection without a lookup per request, a connection dropped while
idle, idle expiry, no resend after a timeout, release of every socket on close and on
cancellation, TLS names, the same behaviour under uvloop, and its reading of responses
(framing it owns, a second answer to one request).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from hookline.transport import AsyncioTransport, SsrfPolicy
from hookline.transport import _asyncio as asyncio_transport
from tests.integration.certificates import self_signed_certificate
from tests.integration.keep_alive import (
    CountingDns,
    KeepAliveServer,
    counting_dns,
    keep_alive_server,
)

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
DEV = SsrfPolicy(allow_private=True)


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as state:
        yield state


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> CountingDns:
    """Answers getaddrinfo for the names in ``answers`` and records every query."""
    return counting_dns(monkeypatch)


@pytest.fixture
async def transport() -> AsyncIterator[AsyncioTransport]:
    pool = AsyncioTransport(DEV)
    yield pool
    await pool.close()


async def test_one_connection_carries_sequential_requests(server: KeepAliveServer) -> None:
    """200 requests in a row travel over one keep-alive connection."""
    transport = AsyncioTransport(DEV)
    try:
        for _ in range(200):
            result = await transport.post(server.url("/echo"), b"{}", {}, 5)
            assert (result.status_code, result.body, result.error) == (200, b"ok", None)
    finally:
        await transport.close()
    assert len(server.connections) == 1
    assert len(server.paths) == 200


async def test_a_reused_connection_needs_no_lookup_a_new_one_always_does(
    server: KeepAliveServer, fake_dns: CountingDns
) -> None:
    """On a kept-alive connection a name is resolved once; each new connection resolves it
    afresh, so a changed answer is never missed."""
    fake_dns.answers["hook.test"] = ["127.0.0.1"]
    transport = AsyncioTransport(SsrfPolicy(allow_networks=LOOPBACK))
    try:
        for _ in range(20):
            result = await transport.post(server.url("/echo", "hook.test"), b"{}", {}, 5)
            assert (result.status_code, result.error) == (200, None)
        assert fake_dns.queries == ["hook.test"]
        fake_dns.queries.clear()
        for _ in range(5):
            result = await transport.post(server.url("/closing", "hook.test"), b"{}", {}, 5)
            assert (result.status_code, result.error) == (200, None)
        # The first reuses the kept-alive connection; each later one needs a new connection.
        assert fake_dns.queries == ["hook.test"] * 4
    finally:
        await transport.close()


async def test_a_new_connection_dials_the_fresh_answer_not_the_remembered_one(
    server: KeepAliveServer, fake_dns: CountingDns
) -> None:
    """When a name moves (to an address nothing listens on), the next connection follows."""
    fake_dns.answers["moving.test"] = ["127.0.0.1"]
    transport = AsyncioTransport(SsrfPolicy(allow_networks=LOOPBACK))
    try:
        url = server.url("/closing", "moving.test")
        first = await transport.post(url, b"{}", {}, 5)
        assert (first.status_code, first.error) == (200, None)
        fake_dns.answers["moving.test"] = ["127.0.0.2"]
        second = await transport.post(url, b"{}", {}, 5)
        assert (second.status_code, second.error) == (0, "connection refused")
        assert len(server.paths) == 1
    finally:
        await transport.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def wait_until_released(server: KeepAliveServer, baseline: int) -> tuple[int, int]:
    """The server's open connections and our descriptors, once both have settled."""
    for _ in range(500):
        if not server.open_connections and open_fds() <= baseline:
            break
        await asyncio.sleep(0.01)
    return server.open_connections, open_fds()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_close_releases_every_socket_and_ends_requests_in_flight(
    server: KeepAliveServer,
) -> None:
    """close() ends a request in flight with status 0, closes every pooled connection and
    leaves no descriptor behind; the transport can be used again afterwards."""
    baseline = open_fds()
    transport = AsyncioTransport(DEV)
    results = await asyncio.gather(
        *(transport.post(server.url("/echo"), b"{}", {}, 5) for _ in range(8))
    )
    assert {r.status_code for r in results} == {200}
    slow = asyncio.create_task(transport.post(server.url("/slow"), b"{}", {}, 5))
    async with asyncio.timeout(5):
        await server.slow_arrived.wait()
    assert open_fds() > baseline
    await transport.close()
    ended = await slow
    assert (ended.status_code, ended.error) == (0, "transport closed")
    server.release.set()  # the server notices the closed connection when it answers
    assert await wait_until_released(server, baseline) == (0, baseline)
    again = await transport.post(server.url("/echo"), b"{}", {}, 5)
    assert (again.status_code, again.error) == (200, None)
    await transport.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_a_cancelled_request_drops_its_connection_only(server: KeepAliveServer) -> None:
    """Cancelling a caller mid-request closes that connection (the server sees it go); the
    transport stays usable, and closing it leaves no descriptor behind."""
    baseline = open_fds()
    transport = AsyncioTransport(DEV)
    try:
        slow = asyncio.create_task(transport.post(server.url("/slow"), b"{}", {}, 5))
        async with asyncio.timeout(5):
            await server.slow_arrived.wait()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        server.release.set()
        for _ in range(500):
            if not server.open_connections:
                break
            await asyncio.sleep(0.01)
        assert server.open_connections == 0
        result = await transport.post(server.url("/echo"), b"{}", {}, 5)
        assert (result.status_code, result.error) == (200, None)
    finally:
        await transport.close()
    assert await wait_until_released(server, baseline) == (0, baseline)


def test_the_same_behaviour_under_uvloop() -> None:
    """Production runs on uvloop: reuse, a timeout and a refusal behave the same there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = AsyncioTransport(DEV)
            try:
                for _ in range(50):
                    url = server.url("/echo", "localhost")
                    result = await transport.post(url, b"{}", {}, 5)
                    assert (result.status_code, result.error) == (200, None)
                assert len(server.connections) == 1
                timed_out = await transport.post(server.url("/slow"), b"{}", {}, 0.2)
                assert (timed_out.status_code, timed_out.error) == (0, "timeout after 0.2s")
                refused = await transport.post(f"http://127.1:{server.port}/", b"{}", {}, 5)
                assert refused.error is not None and refused.error.startswith("invalid URL")
                server.release.set()
            finally:
                await transport.close()

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())


@pytest.fixture
def trusted_certificate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """A self-signed certificate made the system CA bundle through SSL_CERT_FILE, which
    ``ssl.get_default_verify_paths`` (and so the transport's default context) follows."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    return cert_path, key_path


async def _tls_names(cert: tuple[Path, Path], fake_dns: CountingDns) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    fake_dns.answers["localhost"] = ["127.0.0.1"]
    fake_dns.answers["other.test"] = ["127.0.0.1"]
    async with keep_alive_server(context) as server:
        transport = AsyncioTransport(DEV)
        try:
            port = server.port
            ok = await transport.post(f"https://localhost:{port}/hook", b"{}", {}, 5)
            assert (ok.status_code, ok.error, ok.body) == (200, None, b"ok")
            again = await transport.post(f"https://localhost:{port}/hook", b"{}", {}, 5)
            assert (again.status_code, again.error) == (200, None)
            wrong = await transport.post(f"https://other.test:{port}/hook", b"{}", {}, 5)
            assert wrong.status_code == 0
            assert wrong.error is not None and wrong.error.startswith("TLS certificate error")
        finally:
            await transport.close()
    # The second request rode the first connection; the refused handshake never got far
    # enough for the server to count a connection.
    assert server.paths == ["/hook", "/hook"]
    assert len(server.connections) == 1


async def test_tls_verifies_the_name_not_the_address(
    trusted_certificate: tuple[Path, Path], fake_dns: CountingDns
) -> None:
    """https to a name resolved to 127.0.0.1 succeeds and keeps its connection: SNI and
    verification use the name. The same server reached by a name the certificate does not
    carry is refused before a request is sent."""
    await _tls_names(trusted_certificate, fake_dns)


def test_tls_verifies_the_name_under_uvloop(
    trusted_certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """uvloop has its own TLS transport: the same names pass and fail there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        await _tls_names(trusted_certificate, counting_dns(monkeypatch))

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())


async def test_concurrent_requests_each_get_a_connection_then_share_the_pool(
    server: KeepAliveServer, transport: AsyncioTransport
) -> None:
    """16 requests at once open 16 connections; the next 16 at once reuse them all."""
    for _ in range(2):
        results = await asyncio.gather(
            *(transport.post(server.url("/echo"), b"{}", {}, 5) for _ in range(16))
        )
        assert {(r.status_code, r.error) for r in results} == {(200, None)}
    assert len(server.connections) == 16
    assert len(server.paths) == 32


async def test_a_connection_dropped_while_idle_is_replaced_by_a_fresh_one(
    server: KeepAliveServer, transport: AsyncioTransport
) -> None:
    """A pooled connection that ends before a byte of answer gets the request again on a
    new connection, which answers; a fresh connection that does the same is a failure."""
    server.hang_up_reused = True
    first = await transport.post(server.url("/echo"), b"{}", {}, 5)
    second = await transport.post(server.url("/echo"), b"{}", {}, 5)
    assert [(r.status_code, r.error) for r in (first, second)] == [(200, None), (200, None)]
    assert len(server.connections) == 2
    assert server.paths == ["/echo", "/echo", "/echo"]
    assert transport._busy == set(), "the dropped connection is let go, not kept as busy"


async def test_a_request_timing_out_on_a_pooled_connection_is_not_sent_again(
    server: KeepAliveServer, transport: AsyncioTransport
) -> None:
    """The deadline drops a reused connection as well; that is a timeout, not a connection
    dropped while idle, so the request is not repeated on a new one."""
    first = await transport.post(server.url("/echo"), b"{}", {}, 5)
    assert (first.status_code, first.error) == (200, None)
    slow = await transport.post(server.url("/slow"), b"{}", {}, 0.2)
    assert (slow.status_code, slow.error) == (0, "timeout after 0.2s")
    assert server.paths == ["/echo", "/slow"]
    assert len(server.connections) == 1


async def test_an_idle_connection_past_its_age_is_not_reused(
    server: KeepAliveServer, transport: AsyncioTransport, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the idle limit at zero every request opens a new connection."""
    monkeypatch.setattr(asyncio_transport, "_IDLE_CONNECTION_SECONDS", 0.0)
    for _ in range(3):
        result = await transport.post(server.url("/echo"), b"{}", {}, 5)
        assert (result.status_code, result.error) == (200, None)
    assert len(server.connections) == 3


async def test_caller_framing_headers_are_not_sent(
    server: KeepAliveServer, transport: AsyncioTransport
) -> None:
    """A caller's Content-Length or Transfer-Encoding cannot desynchronise the connection:
    the transport frames the body itself, and the next request on it still works."""
    headers = {"Content-Length": "999", "Transfer-Encoding": "chunked"}
    for _ in range(2):
        result = await transport.post(server.url("/echo"), b"{}", headers, 5)
        assert (result.status_code, result.error) == (200, None)
    assert len(server.connections) == 1


async def test_a_second_answer_in_the_same_packet_neither_replaces_the_first_nor_is_reused() -> (
    None
):
    """A peer that sends two responses to one request: the first is the result, and the
    connection is not pooled, so the stray answer cannot be read as the next request's."""
    answered = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n{}")
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            b"HTTP/1.1 500 Oops\r\nRetry-After: 9\r\nContent-Length: 0\r\n\r\n"
        )
        await writer.drain()
        async with asyncio.timeout(5):
            await answered.wait()
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    transport = AsyncioTransport(DEV)
    try:
        result = await transport.post(f"http://127.0.0.1:{port}/", b"{}", {}, 5)
        assert (result.status_code, result.body, result.retry_after) == (200, b"ok", None)
        assert transport._idle_count == 0
    finally:
        answered.set()
        await transport.close()
        listener.close()
        await listener.wait_closed()


async def test_a_connection_is_reused_after_a_chunked_answer_and_dropped_after_close(
    server: KeepAliveServer, transport: AsyncioTransport
) -> None:
    """A chunked answer read to its last chunk leaves the connection pooled; an answer that
    says Connection: close does not."""
    server.chunked = True
    for path in ("/a", "/b", "/closing", "/c"):
        result = await transport.post(server.url(path), b"{}", {}, 5)
        assert (result.status_code, result.error, result.body) == (200, None, b"ok")
    assert len(server.connections) == 2
