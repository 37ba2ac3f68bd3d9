"""Deliveries through an HTTP proxy (CONNECT), with a tiny tunnelling proxy written here on
127.0.0.1: the destination is still resolved and vetted locally, the CONNECT names the
vetted address, and Host and TLS server name stay the URL's."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from hookline.transport import AsyncioTransport, RequestOptions, SsrfPolicy, TlsOptions
from tests.integration.certificates import CertificateAuthority
from tests.integration.keep_alive import CountingDns, counting_dns, keep_alive_server

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


@dataclass
class ConnectProxy:
    """An HTTP proxy that only tunnels: it records every connection and CONNECT request
    head, and either opens the tunnel or gives ``answer`` and hangs up (``stall``: says
    nothing at all)."""

    port: int = 0
    accepted: int = 0
    heads: list[bytes] = field(default_factory=list)
    answer: bytes | None = None
    stall: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def targets(self) -> list[str]:
        return [head.split(b" ", 2)[1].decode() for head in self.heads]

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            if self.stall:
                await self.done.wait()
                return
            if self.answer is not None:
                writer.write(self.answer)
                return
            host, _, port = head.split(b" ", 2)[1].decode().rpartition(":")
            up_reader, up_writer = await asyncio.open_connection(host.strip("[]"), int(port))
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until it ends: one direction of a CONNECT tunnel."""
    with contextlib.suppress(ConnectionError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


@pytest.fixture
async def proxy() -> AsyncIterator[ConnectProxy]:
    state = ConnectProxy()
    listener = await asyncio.start_server(state.serve, "127.0.0.1", 0)
    state.port = listener.sockets[0].getsockname()[1]
    yield state
    state.done.set()
    listener.close()
    await listener.wait_closed()


@pytest.fixture
async def fake_dns(monkeypatch: pytest.MonkeyPatch) -> CountingDns:
    return counting_dns(monkeypatch)


async def test_a_delivery_rides_a_tunnel_to_the_vetted_address(
    proxy: ConnectProxy, fake_dns: CountingDns
) -> None:
    """The name is resolved here and the CONNECT names the address, not the name; the
    request inside keeps the URL's Host, and later requests reuse the tunnel."""
    fake_dns.answers["hook.test"] = ["127.0.0.1"]
    transport = AsyncioTransport(SsrfPolicy(allow_networks=LOOPBACK), proxy=proxy.url())
    try:
        async with keep_alive_server() as server:
            url = server.url("/echo", "hook.test")
            for _ in range(3):
                result = await transport.post(url, b"{}", {}, 5)
                assert (result.status_code, result.error, result.body) == (200, None, b"ok")
    finally:
        await transport.close()
    assert proxy.targets == [f"127.0.0.1:{server.port}"]
    assert proxy.heads[0].startswith(
        f"CONNECT 127.0.0.1:{server.port} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n".encode()
    )
    assert fake_dns.queries == ["hook.test"]
    assert server.paths == ["/echo"] * 3
    assert len(server.connections) == 1


async def _tls_through_a_tunnel(directory: Path, dns: CountingDns) -> None:
    ca = CertificateAuthority("hookline test CA")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    issued = ca.issue("secure.test", names=("secure.test",), addresses=())
    context.load_cert_chain(*issued.write(directory, "server"))
    dns.answers["secure.test"] = ["127.0.0.1"]
    options = RequestOptions(tls=TlsOptions(ca_bundle=ca.pem))
    proxy = ConnectProxy()
    listener = await asyncio.start_server(proxy.serve, "127.0.0.1", 0)
    proxy.port = listener.sockets[0].getsockname()[1]
    transport = AsyncioTransport(SsrfPolicy(allow_networks=LOOPBACK), proxy=proxy.url())
    try:
        async with keep_alive_server(context) as server:
            url = f"https://secure.test:{server.port}/hook"
            results = [await transport.post(url, b"{}", {}, 5, options) for _ in range(2)]
    finally:
        await transport.close()
        listener.close()
        await listener.wait_closed()
    assert [(r.status_code, r.error, r.body) for r in results] == [(200, None, b"ok")] * 2
    assert proxy.targets == [f"127.0.0.1:{server.port}"]


async def test_tls_inside_the_tunnel_verifies_the_urls_name(
    tmp_path: Path, fake_dns: CountingDns
) -> None:
    """The tunnel goes to an address; the handshake inside it sends and checks the URL's
    name, which is the only name the server's certificate carries, and the TLS connection
    in the tunnel is kept for the next request."""
    await _tls_through_a_tunnel(tmp_path, fake_dns)


def test_tls_inside_the_tunnel_under_uvloop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop's socket calls and TLS transport carry the tunnel the same way."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        await _tls_through_a_tunnel(tmp_path, counting_dns(monkeypatch))

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "denied.test", "[::1]"])
async def test_the_ssrf_guard_refuses_before_the_proxy_is_asked(
    proxy: ConnectProxy, fake_dns: CountingDns, host: str
) -> None:
    """A denied destination is refused here: the proxy is never even connected to, so it
    cannot be used to reach what the guard refused."""
    fake_dns.answers["localhost"] = ["127.0.0.1"]
    fake_dns.answers["denied.test"] = ["203.0.113.9", "10.0.0.7"]
    transport = AsyncioTransport(SsrfPolicy(), proxy=proxy.url())
    try:
        result = await transport.post(f"http://{host}:8080/hook", b"{}", {}, 5)
    finally:
        await transport.close()
    assert result.status_code == 0
    assert result.error is not None and result.error.startswith("blocked by SSRF guard: ")
    assert proxy.accepted == 0


async def test_proxy_credentials_are_sent_as_basic_proxy_authorization(
    proxy: ConnectProxy,
) -> None:
    """User information in the proxy URL becomes Proxy-Authorization, decoded first."""
    proxy.answer = b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n"
    url = f"http://ops%40example:s%3Acret@127.0.0.1:{proxy.port}"
    transport = AsyncioTransport(SsrfPolicy(allow_private=True), proxy=url)
    try:
        result = await transport.post("http://127.0.0.1:9/hook", b"{}", {}, 5)
    finally:
        await transport.close()
    assert (result.status_code, result.error) == (
        0,
        "proxy refused CONNECT 127.0.0.1:9: 407 Proxy Authentication Required",
    )
    expected = base64.b64encode(b"ops@example:s:cret").decode()
    assert f"\r\nProxy-Authorization: Basic {expected}\r\n".encode() in proxy.heads[0]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 403 Forbidden\r\n\r\n", "proxy refused CONNECT 127.0.0.1:9: 403 Forbidden"),
        (b"", "proxy closed the connection before answering CONNECT 127.0.0.1:9"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "proxy gave an invalid answer to CONNECT"),
        (b"HTTP/1.1 2000 OK\r\n\r\n", "proxy gave an invalid answer to CONNECT"),
        (b"HTTP/1.1 200 OK\r\n\r\nHTTP/1.1 200 OK", "proxy sent data before the tunnel"),
    ],
    ids=["refused", "hung-up", "not-http", "bad-status", "early-data"],
)
async def test_a_tunnel_the_proxy_does_not_open_is_status_zero_with_the_reason(
    proxy: ConnectProxy, answer: bytes, reason: str
) -> None:
    """Whatever the proxy answers instead of opening the tunnel is the result's reason."""
    proxy.answer = answer
    transport = AsyncioTransport(SsrfPolicy(allow_private=True), proxy=proxy.url())
    try:
        result = await transport.post("http://127.0.0.1:9/hook", b"{}", {}, 5)
    finally:
        await transport.close()
    assert result.status_code == 0
    assert result.error is not None and result.error.startswith(reason), result.error


async def test_a_proxy_named_by_host_name_is_resolved_each_time(
    proxy: ConnectProxy, fake_dns: CountingDns
) -> None:
    """A proxy given by name is looked up for every new tunnel; a name that does not
    resolve is the result's reason."""
    fake_dns.answers["proxy.test"] = ["127.0.0.1"]
    transport = AsyncioTransport(
        SsrfPolicy(allow_private=True), proxy=f"http://proxy.test:{proxy.port}"
    )
    try:
        async with keep_alive_server() as server:
            for path in ("/closing", "/closing"):
                result = await transport.post(server.url(path), b"{}", {}, 5)
                assert (result.status_code, result.error) == (200, None)
            del fake_dns.answers["proxy.test"]
            lost = await transport.post(server.url("/echo"), b"{}", {}, 5)
    finally:
        await transport.close()
    assert fake_dns.queries == ["proxy.test"] * 3
    assert lost.status_code == 0
    assert lost.error is not None
    assert lost.error.startswith("proxy connection failed: proxy.test did not resolve")


async def test_an_unreachable_proxy_is_status_zero() -> None:
    """Nothing listening where the proxy should be: the reason names the proxy."""
    transport = AsyncioTransport(SsrfPolicy(allow_private=True), proxy="http://127.0.0.1:9")
    try:
        result = await transport.post("http://127.0.0.1:8080/hook", b"{}", {}, 5)
    finally:
        await transport.close()
    assert (result.status_code, result.error) == (0, "proxy connection refused")


async def test_a_proxy_that_never_answers_ends_at_the_deadline(proxy: ConnectProxy) -> None:
    """The tunnel is part of the attempt: a silent proxy is a timeout like a silent server."""
    proxy.stall = True
    transport = AsyncioTransport(SsrfPolicy(allow_private=True), proxy=proxy.url())
    try:
        result = await transport.post("http://127.0.0.1:9/hook", b"{}", {}, 0.3)
    finally:
        await transport.close()
    assert (result.status_code, result.error) == (0, "timeout after 0.3s")
    assert len(proxy.heads) == 1


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:3128",
        "socks5://127.0.0.1:1080",
        "http://127.0.0.1:3128/path",
        "http://:3128",
        "127.0.0.1:3128",
    ],
)
def test_a_proxy_that_is_not_an_http_host_and_port_is_refused_at_construction(url: str) -> None:
    """Only ``http://host:port`` proxies are spoken to; anything else fails at start."""
    with pytest.raises(ValueError, match="proxy URL"):
        AsyncioTransport(proxy=url)
