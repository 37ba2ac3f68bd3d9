"""What the two transports that keep their own connection pool (curl and asyncio) prove
beyond the shared contract in ``test_transport.py``: one connection for a run of requests,
re-vetting of every new connection without a lookup per request, release of every socket
on close and on cancellation, TLS names, and the same behaviour under uvloop.

What only one of them has to prove is in ``test_curl_transport.py`` and
``test_asyncio_transport.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from hookline.delivery import curl_transport
from hookline.delivery.asyncio_transport import AsyncioTransport
from hookline.delivery.curl_transport import CurlTransport
from hookline.delivery.transport import SsrfPolicy, Transport
from tests.integration.keep_alive import (
    CountingDns,
    KeepAliveServer,
    counting_dns,
    keep_alive_server,
)
from tests.integration.test_transport import self_signed_certificate

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
DEV = SsrfPolicy(allow_private=True)

PoolFactory = Callable[[SsrfPolicy], Transport]


@pytest.fixture(params=[CurlTransport, AsyncioTransport], ids=["curl", "asyncio"])
def make_pool(request: pytest.FixtureRequest) -> PoolFactory:
    """Which implementation the test builds: every test runs against each."""
    factory: PoolFactory = request.param
    return factory


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as state:
        yield state


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> CountingDns:
    """Answers getaddrinfo for the names in ``answers`` and records every query."""
    return counting_dns(monkeypatch)


async def test_one_connection_carries_sequential_requests(
    server: KeepAliveServer, make_pool: PoolFactory
) -> None:
    """200 requests in a row travel over one keep-alive connection."""
    transport = make_pool(DEV)
    try:
        for _ in range(200):
            result = await transport.post(server.url("/echo"), b"{}", {}, 5)
            assert (result.status_code, result.body, result.error) == (200, b"ok", None)
    finally:
        await transport.close()
    assert len(server.connections) == 1
    assert len(server.paths) == 200


async def test_a_reused_connection_needs_no_lookup_a_new_one_always_does(
    server: KeepAliveServer, fake_dns: CountingDns, make_pool: PoolFactory
) -> None:
    """On a kept-alive connection a name is resolved once; each new connection resolves it
    afresh, so a changed answer is never missed."""
    fake_dns.answers["hook.test"] = ["127.0.0.1"]
    transport = make_pool(SsrfPolicy(allow_networks=LOOPBACK))
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
    server: KeepAliveServer, fake_dns: CountingDns, make_pool: PoolFactory
) -> None:
    """When a name moves (to an address nothing listens on), the next connection follows."""
    fake_dns.answers["moving.test"] = ["127.0.0.1"]
    transport = make_pool(SsrfPolicy(allow_networks=LOOPBACK))
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
    server: KeepAliveServer, make_pool: PoolFactory
) -> None:
    """close() ends a request in flight with status 0, closes every pooled connection and
    leaves no descriptor behind; the transport can be used again afterwards."""
    baseline = open_fds()
    transport = make_pool(DEV)
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
async def test_a_cancelled_request_drops_its_connection_only(
    server: KeepAliveServer, make_pool: PoolFactory
) -> None:
    """Cancelling a caller mid-request closes that connection (the server sees it go); the
    transport stays usable, and closing it leaves no descriptor behind."""
    baseline = open_fds()
    transport = make_pool(DEV)
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


def test_the_same_behaviour_under_uvloop(make_pool: PoolFactory) -> None:
    """Production runs on uvloop: reuse, a timeout and a refusal behave the same there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        async with keep_alive_server() as server:
            transport = make_pool(DEV)
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
def trusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate made the system CA bundle through SSL_CERT_FILE, which
    ``ssl.get_default_verify_paths`` (and so curl's CAINFO and asyncio's default context)
    follows."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    curl_transport._ca_options.cache_clear()
    yield cert_path, key_path
    curl_transport._ca_options.cache_clear()


async def _tls_names(
    cert: tuple[Path, Path], fake_dns: CountingDns, make_pool: PoolFactory
) -> None:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*cert)
    fake_dns.answers["localhost"] = ["127.0.0.1"]
    fake_dns.answers["other.test"] = ["127.0.0.1"]
    async with keep_alive_server(context) as server:
        transport = make_pool(DEV)
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
    trusted_certificate: tuple[Path, Path], fake_dns: CountingDns, make_pool: PoolFactory
) -> None:
    """https to a name resolved to 127.0.0.1 succeeds and keeps its connection: SNI and
    verification use the name. The same server reached by a name the certificate does not
    carry is refused before a request is sent."""
    await _tls_names(trusted_certificate, fake_dns, make_pool)


def test_tls_verifies_the_name_under_uvloop(
    trusted_certificate: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    make_pool: PoolFactory,
) -> None:
    """uvloop has its own TLS transport: the same names pass and fail there."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        await _tls_names(trusted_certificate, counting_dns(monkeypatch), make_pool)

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())
