"""What only the pycurl transport has to prove: handle and connection reuse, re-vetting of
new connections without a lookup per request, the guards inside curl's callbacks, release of
every socket on close, and the same behaviour under uvloop.

Behaviour shared with ``AiohttpTransport`` is pinned in ``test_transport.py``, which runs
every test against both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pycurl
import pytest

from hookline.delivery import curl_transport
from hookline.delivery.curl_transport import CurlTransport
from hookline.delivery.transport import SsrfPolicy
from tests.integration.keep_alive import (
    CountingDns,
    KeepAliveServer,
    counting_dns,
    keep_alive_server,
)
from tests.integration.test_transport import self_signed_certificate

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
def curl_handles(monkeypatch: pytest.MonkeyPatch) -> list[pycurl.Curl]:
    """Every easy handle the transport creates, in order."""
    created: list[pycurl.Curl] = []
    real = pycurl.Curl

    def counting() -> pycurl.Curl:
        handle = real()
        created.append(handle)
        return handle

    monkeypatch.setattr(pycurl, "Curl", counting)
    return created


async def test_handle_and_connection_are_reused_across_sequential_requests(
    server: KeepAliveServer, curl_handles: list[pycurl.Curl]
) -> None:
    """200 requests in a row use one easy handle and one keep-alive connection."""
    transport = CurlTransport(DEV)
    try:
        for _ in range(200):
            result = await transport.post(server.url("/echo"), b"{}", {}, 5)
            assert (result.status_code, result.body) == (200, b"ok")
    finally:
        await transport.close()
    assert len(curl_handles) == 1
    assert len(server.connections) == 1
    assert len(server.paths) == 200


async def test_concurrency_is_bounded_by_max_connections(server: KeepAliveServer) -> None:
    """100 concurrent requests with max_connections=8 all arrive over at most 8 connections."""
    transport = CurlTransport(DEV, max_connections=8)
    try:
        results = await asyncio.gather(
            *(transport.post(server.url("/echo"), b"{}", {}, 5) for _ in range(100))
        )
    finally:
        await transport.close()
    assert {(r.status_code, r.error) for r in results} == {(200, None)}
    assert len(server.paths) == 100
    assert len(server.connections) <= 8


async def test_a_reused_connection_needs_no_lookup_a_new_one_always_does(
    server: KeepAliveServer, fake_dns: CountingDns
) -> None:
    """On a kept-alive connection a name is resolved once; each new connection resolves it
    afresh, so a changed answer is never missed."""
    fake_dns.answers["hook.test"] = ["127.0.0.1"]
    transport = CurlTransport(SsrfPolicy(allow_networks=LOOPBACK))
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
    transport = CurlTransport(SsrfPolicy(allow_networks=LOOPBACK))
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


def test_curl_is_never_allowed_to_resolve_a_name_itself() -> None:
    """Without a pin, curl's own lookup is aborted before it starts, with a reason."""
    handle = curl_transport._Handle()
    try:
        plan = curl_transport._Plan("http://nowhere.test:1/", "nowhere.test", 1, None, False, None)
        handle.start(plan, frozenset())
        handle.curl.setopt(pycurl.URL, plan.url)
        with pytest.raises(pycurl.error) as caught:
            handle.curl.perform()
        assert caught.value.args[0] == pycurl.E_ABORTED_BY_CALLBACK
        assert handle.refusal == (
            "blocked by SSRF guard: unvetted name resolution for nowhere.test"
        )
    finally:
        handle.close()


@pytest.mark.parametrize("vetted", [frozenset({ipaddress.ip_address("127.0.0.2")}), None])
async def test_socket_callback_opens_nothing_the_request_did_not_vet(
    vetted: frozenset[ipaddress.IPv4Address] | None,
) -> None:
    """curl about to dial an address outside the request's vetted set gets no socket; a
    request on remembered addresses (None) may not open a connection at all."""
    accepted: asyncio.Queue[int] = asyncio.Queue()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.put_nowait(writer.get_extra_info("peername")[1])
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    handle = curl_transport._Handle()
    try:
        url = f"http://127.0.0.1:{port}/"
        literal = frozenset({ipaddress.ip_address("127.0.0.1")})
        handle.start(curl_transport._Plan(url, "127.0.0.1", port, literal, False, None), vetted)
        handle.curl.setopt(pycurl.URL, url)
        with pytest.raises(pycurl.error) as caught:
            handle.curl.perform()
        assert caught.value.args[0] == pycurl.E_COULDNT_CONNECT
        if vetted is None:
            assert (handle.needs_fresh, handle.refusal) == (True, None)
        else:
            assert handle.refusal == (
                "blocked by SSRF guard: 127.0.0.1 was not vetted for 127.0.0.1"
            )
        # A sentinel connection: accepts are FIFO, so it comes after anything curl opened.
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        sentinel = writer.get_extra_info("sockname")[1]
        async with asyncio.timeout(5):
            first = await accepted.get()
        writer.close()
        assert first == sentinel
    finally:
        handle.close()
        listener.close()
        await listener.wait_closed()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_close_releases_every_socket_and_ends_requests_in_flight(
    server: KeepAliveServer,
) -> None:
    """close() ends a request in flight with status 0, closes every pooled connection and
    leaves no descriptor behind; the transport can be used again afterwards."""
    baseline = open_fds()
    transport = CurlTransport(DEV)
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
    for _ in range(500):
        if not server.open_connections and open_fds() <= baseline:
            break
        await asyncio.sleep(0.01)
    assert (server.open_connections, open_fds()) == (0, baseline)
    again = await transport.post(server.url("/echo"), b"{}", {}, 5)
    assert (again.status_code, again.error) == (200, None)
    await transport.close()


async def test_a_cancelled_request_leaves_the_transport_usable(server: KeepAliveServer) -> None:
    """Cancelling a caller mid-transfer drops that transfer only."""
    transport = CurlTransport(DEV)
    try:
        slow = asyncio.create_task(transport.post(server.url("/slow"), b"{}", {}, 5))
        async with asyncio.timeout(5):
            await server.slow_arrived.wait()
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        result = await transport.post(server.url("/echo"), b"{}", {}, 5)
        assert (result.status_code, result.error) == (200, None)
    finally:
        await transport.close()


async def _scenario_under_uvloop() -> None:
    async with keep_alive_server() as server:
        transport = CurlTransport(DEV)
        try:
            for _ in range(50):
                result = await transport.post(server.url("/echo", "localhost"), b"{}", {}, 5)
                assert (result.status_code, result.error) == (200, None)
            assert len(server.connections) == 1
            timed_out = await transport.post(server.url("/slow"), b"{}", {}, 0.2)
            assert (timed_out.status_code, timed_out.error) == (0, "timeout after 0.2s")
            refused = await transport.post(f"http://127.1:{server.port}/", b"{}", {}, 5)
            assert refused.error is not None and refused.error.startswith("invalid URL")
            server.release.set()
        finally:
            await transport.close()


def test_the_same_behaviour_under_uvloop() -> None:
    """Production runs on uvloop, whose add_reader/add_writer drive the multi there."""
    uvloop = pytest.importorskip("uvloop")
    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(_scenario_under_uvloop())


@pytest.fixture
def trusted_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path]]:
    """A self-signed certificate made the system CA bundle through SSL_CERT_FILE, which
    ``ssl.get_default_verify_paths`` (and so the transport's CAINFO) follows."""
    cert_path, key_path = self_signed_certificate(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    curl_transport._ca_options.cache_clear()
    yield cert_path, key_path
    curl_transport._ca_options.cache_clear()


async def test_tls_to_a_pinned_name_verifies_the_name_not_the_address(
    trusted_certificate: tuple[Path, Path], fake_dns: CountingDns
) -> None:
    """https to a name pinned to 127.0.0.1 succeeds: SNI and verification use the name.
    The same server reached as an address the certificate does not name is refused."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*trusted_certificate)
    fake_dns.answers["localhost"] = ["127.0.0.1"]
    fake_dns.answers["other.test"] = ["127.0.0.1"]
    async with keep_alive_server(context) as server:
        transport = CurlTransport(DEV)
        try:
            port = server.port
            ok = await transport.post(f"https://localhost:{port}/hook", b"{}", {}, 5)
            assert (ok.status_code, ok.error, ok.body) == (200, None, b"ok")
            wrong = await transport.post(f"https://other.test:{port}/hook", b"{}", {}, 5)
            assert wrong.status_code == 0
            assert wrong.error is not None and wrong.error.startswith("TLS certificate error")
        finally:
            await transport.close()
    assert server.paths == ["/hook"]
