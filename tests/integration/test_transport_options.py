"""What a caller may ask of one request (``RequestOptions``), against real listeners on
127.0.0.1: a deadline that holds from the lookup to the last byte, a cap on the response
bytes read, and per-endpoint TLS (a private CA, a client certificate) with real handshakes
and certificates made here."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from hookline.transport import AsyncioTransport, RequestOptions, SsrfPolicy, TlsOptions
from hookline.transport import _tls as tls_module
from hookline.transport._asyncio import RESPONSE_HEAD_LIMIT_BYTES
from tests.integration.certificates import CertificateAuthority, Issued
from tests.integration.keep_alive import keep_alive_server

DEV = SsrfPolicy(allow_private=True)


@pytest.fixture
async def transport() -> AsyncIterator[AsyncioTransport]:
    pool = AsyncioTransport(DEV)
    yield pool
    await pool.close()


@contextlib.asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A listener that accepts, reads whatever comes and never writes a byte (no HTTP
    answer, no TLS handshake); yields its port."""
    done = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while not done.is_set() and await reader.read(65536):
                pass
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        done.set()
        listener.close()
        await listener.wait_closed()


def assert_timed_out(result: Any, seconds: float) -> None:
    assert (result.status_code, result.error, result.body) == (0, f"timeout after {seconds}s", b"")
    assert seconds * 1000 - 50 <= result.duration_ms < 4000


async def test_the_deadline_covers_a_server_that_accepts_and_never_answers(
    transport: AsyncioTransport,
) -> None:
    """Connected, request written, no answer: status 0 once the deadline passes."""
    async with silent_listener() as port:
        result = await transport.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.3)
    assert_timed_out(result, 0.3)


async def test_the_deadline_covers_a_tls_handshake_that_never_ends(
    transport: AsyncioTransport,
) -> None:
    """A server that never answers the TLS ClientHello is a timeout, not a wait for the
    handshake's own (much longer) limit."""
    async with silent_listener() as port:
        result = await transport.post(f"https://127.0.0.1:{port}/", b"{}", {}, 0.3)
    assert_timed_out(result, 0.3)


def test_the_deadline_covers_a_stalled_tls_handshake_under_uvloop() -> None:
    """uvloop has its own TLS transport: a stalled handshake ends at the deadline there too."""
    uvloop = pytest.importorskip("uvloop")

    async def scenario() -> None:
        transport = AsyncioTransport(DEV)
        try:
            async with silent_listener() as port:
                result = await transport.post(f"https://127.0.0.1:{port}/", b"{}", {}, 0.3)
            assert_timed_out(result, 0.3)
        finally:
            await transport.close()

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())


@pytest.fixture
async def stalled_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """getaddrinfo never answers; returns the names it was asked for."""
    asked: list[str] = []
    never = asyncio.Event()

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        asked.append(host)
        await never.wait()
        raise AssertionError("unreachable")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", getaddrinfo)
    return asked


@pytest.mark.parametrize(
    ("url", "host"),
    [("http://hook.test/", "hook.test"), ("http://1.2.3.4.5/", "1.2.3.4.5")],
    ids=["name", "non-canonical-spelling"],
)
async def test_the_deadline_covers_a_lookup_that_never_ends(
    stalled_dns: list[str], transport: AsyncioTransport, url: str, host: str
) -> None:
    """Name resolution is inside the deadline, for a host name and for the lookup that
    explains a refused non-canonical spelling."""
    result = await transport.post(url, b"{}", {}, 0.3)
    assert_timed_out(result, 0.3)
    assert stalled_dns == [host]


@contextlib.asynccontextmanager
async def fixed_answer(response: bytes) -> AsyncIterator[int]:
    """A keep-alive listener that gives every request the same bytes; yields its port."""

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.partition(b":")[2])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                writer.write(response)
                await writer.drain()
        writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield listener.sockets[0].getsockname()[1]
    finally:
        listener.close()
        await listener.wait_closed()


BIG = b"HTTP/1.1 500 Oops\r\nRetry-After: 7\r\nContent-Length: 102400\r\n\r\n" + b"x" * 102400


@pytest.mark.parametrize("cap", [0, 10, 65536])
async def test_the_response_cap_cuts_the_body_and_the_status_stands(
    transport: AsyncioTransport, cap: int
) -> None:
    """Past ``max_response_bytes`` the body is cut there, the status and Retry-After stand,
    and the cut connection is not used again."""
    options = RequestOptions(max_response_bytes=cap)
    async with fixed_answer(BIG) as port:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(2):
            result = await transport.post(url, b"{}", {}, 5, options)
            assert (result.status_code, result.error, result.retry_after) == (500, None, "7")
            assert result.body == b"x" * cap
    assert transport._idle_count == 0


async def test_a_body_within_the_cap_is_whole_and_the_connection_kept(
    transport: AsyncioTransport,
) -> None:
    """A body exactly at the cap is read whole, and its connection goes back to the pool."""
    options = RequestOptions(max_response_bytes=2)
    async with keep_alive_server() as server:
        for _ in range(3):
            result = await transport.post(server.url("/echo"), b"{}", {}, 5, options)
            assert (result.status_code, result.body) == (200, b"ok")
    assert len(server.connections) == 1


@pytest.fixture
def server_ca() -> CertificateAuthority:
    return CertificateAuthority("hookline test server CA")


@pytest.fixture
def client_ca() -> CertificateAuthority:
    return CertificateAuthority("hookline test client CA")


def server_context(
    directory: Path, ca: CertificateAuthority, client_ca: CertificateAuthority | None = None
) -> ssl.SSLContext:
    """A TLS server on a certificate ``ca`` issued; with ``client_ca``, one that requires a
    client certificate that CA issued."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*ca.issue("localhost").write(directory, "server"))
    if client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=client_ca.pem)
    return context


async def test_a_custom_ca_bundle_trusts_the_servers_it_signed(
    tmp_path: Path, server_ca: CertificateAuthority, transport: AsyncioTransport
) -> None:
    """A server whose certificate a private CA signed is accepted with that CA as the
    endpoint's bundle, and refused without it."""
    trusted = RequestOptions(tls=TlsOptions(ca_bundle=server_ca.pem))
    async with keep_alive_server(server_context(tmp_path, server_ca)) as server:
        for host in ("localhost", "127.0.0.1"):
            url = f"https://{host}:{server.port}/hook"
            ok = await transport.post(url, b"{}", {}, 5, trusted)
            assert (ok.status_code, ok.error, ok.body) == (200, None, b"ok")
            refused = await transport.post(url, b"{}", {}, 5)
            assert refused.status_code == 0
            assert refused.error is not None
            assert refused.error.startswith("TLS certificate error"), refused.error
    assert server.paths == ["/hook", "/hook"]


async def test_a_custom_ca_bundle_replaces_the_systems_trust(
    tmp_path: Path, server_ca: CertificateAuthority, transport: AsyncioTransport
) -> None:
    """With another CA as the bundle, the server is refused: the bundle is the only trust."""
    other = RequestOptions(tls=TlsOptions(ca_bundle=CertificateAuthority("other CA").pem))
    async with keep_alive_server(server_context(tmp_path, server_ca)) as server:
        result = await transport.post(f"https://localhost:{server.port}/hook", b"{}", {}, 5, other)
    assert result.error is not None and result.error.startswith("TLS certificate error")
    assert server.paths == []


def client_options(server_ca: CertificateAuthority, client: Issued) -> RequestOptions:
    return RequestOptions(
        tls=TlsOptions(
            ca_bundle=server_ca.pem, client_certificate=client.certificate, client_key=client.key
        )
    )


async def _mutual_tls(
    directory: Path, server_ca: CertificateAuthority, client_ca: CertificateAuthority
) -> None:
    """A server that requires a client certificate: presented, it is checked and the
    request served; a request without it is refused and never rides the connection the
    certificate opened."""
    context = server_context(directory, server_ca, client_ca)
    with_certificate = client_options(server_ca, client_ca.issue("hookline-client", client=True))
    server_trust_only = RequestOptions(tls=TlsOptions(ca_bundle=server_ca.pem))
    transport = AsyncioTransport(DEV)
    try:
        async with keep_alive_server(context) as server:
            url = f"https://localhost:{server.port}/hook"
            first = await transport.post(url, b"{}", {}, 5, with_certificate)
            assert (first.status_code, first.error) == (200, None)
            # An asyncio server closes a refused handshake without a TLS alert.
            without = await transport.post(url, b"{}", {}, 5, server_trust_only)
            assert (without.status_code, without.error) == (
                0,
                "server disconnected without a response",
            )
            again = await transport.post(url, b"{}", {}, 5, with_certificate)
            assert (again.status_code, again.error) == (200, None)
    finally:
        await transport.close()
    assert server.paths == ["/hook", "/hook"]
    presented = server.client_certificates[0]
    assert isinstance(presented, dict)
    assert presented["subject"] == ((("commonName", "hookline-client"),),)


async def test_a_client_certificate_is_presented_and_kept_to_its_own_connections(
    tmp_path: Path, server_ca: CertificateAuthority, client_ca: CertificateAuthority
) -> None:
    """mTLS with a server that requires and checks the client's certificate."""
    await _mutual_tls(tmp_path, server_ca, client_ca)


def test_a_client_certificate_is_presented_under_uvloop(
    tmp_path: Path, server_ca: CertificateAuthority, client_ca: CertificateAuthority
) -> None:
    """uvloop's TLS transport presents the certificate and keeps it to its connections too."""
    uvloop = pytest.importorskip("uvloop")
    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(_mutual_tls(tmp_path, server_ca, client_ca))


@contextlib.contextmanager
def alerting_server(context: ssl.SSLContext) -> Iterator[tuple[int, list[Exception]]]:
    """A blocking TLS server in a thread for one connection: OpenSSL on a plain socket
    sends the alert that refuses a handshake, as nginx does. Yields the port and the
    server's handshake errors."""
    errors: list[Exception] = []
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (ssl.SSLError, OSError) as exc:
            errors.append(exc)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], errors
    finally:
        thread.join(5)
        listener.close()


def test_a_refused_client_certificate_is_reported_as_a_tls_error_under_uvloop(
    tmp_path: Path, server_ca: CertificateAuthority, client_ca: CertificateAuthority
) -> None:
    """Where the loop hands the server's alert on (uvloop, which production runs), the
    result says the TLS handshake was refused and why, not merely that the server left."""
    uvloop = pytest.importorskip("uvloop")
    stranger = client_options(server_ca, CertificateAuthority("x").issue("x", client=True))

    async def scenario() -> None:
        transport = AsyncioTransport(DEV)
        try:
            with alerting_server(server_context(tmp_path, server_ca, client_ca)) as (port, errors):
                url = f"https://localhost:{port}/hook"
                result = await transport.post(url, b"{}", {}, 5, stranger)
        finally:
            await transport.close()
        assert result.status_code == 0
        assert result.error is not None
        assert result.error.startswith("TLS error: [SSL: "), result.error
        assert "alert" in result.error
        assert len(errors) == 1

    run: Callable[[Awaitable[None]], None] = uvloop.run
    run(scenario())


async def test_a_client_certificate_from_another_ca_is_refused_by_the_server(
    tmp_path: Path,
    server_ca: CertificateAuthority,
    client_ca: CertificateAuthority,
    transport: AsyncioTransport,
) -> None:
    """The server checks what it is shown: a certificate its CA did not issue is refused
    and the request never served."""
    stranger = client_options(server_ca, CertificateAuthority("x").issue("x", client=True))
    async with keep_alive_server(server_context(tmp_path, server_ca, client_ca)) as server:
        url = f"https://localhost:{server.port}/hook"
        result = await transport.post(url, b"{}", {}, 5, stranger)
    assert (result.status_code, result.error) == (0, "server disconnected without a response")
    assert server.paths == []


async def test_equal_tls_settings_share_one_context(
    tmp_path: Path,
    server_ca: CertificateAuthority,
    client_ca: CertificateAuthority,
    transport: AsyncioTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Equal options built anew for every request (as from a database row) build the SSL
    context once, however many connections they open."""
    built: list[TlsOptions] = []
    real = tls_module.build_context

    def counting(tls: TlsOptions) -> ssl.SSLContext:
        built.append(tls)
        return real(tls)

    monkeypatch.setattr(tls_module, "build_context", counting)
    client = client_ca.issue("hookline-client", client=True)
    async with keep_alive_server(server_context(tmp_path, server_ca, client_ca)) as server:
        for _ in range(3):
            options = client_options(server_ca, Issued(client.certificate, client.key))
            url = f"https://localhost:{server.port}/closing"
            result = await transport.post(url, b"{}", {}, 5, options)
            assert (result.status_code, result.error) == (200, None)
    assert len(server.connections) == 3
    assert len(built) == 1


async def test_unusable_tls_settings_are_a_status_zero_before_any_connection(
    transport: AsyncioTransport,
) -> None:
    """PEM text that is not a certificate is reported as a configuration error; nothing is
    dialled, and nothing is kept, so a corrected setting takes effect."""
    async with silent_listener() as port:
        url = f"https://127.0.0.1:{port}/"
        for tls in (
            TlsOptions(ca_bundle="not a certificate"),
            TlsOptions(client_certificate="not a certificate", client_key="nor a key"),
        ):
            result = await transport.post(url, b"{}", {}, 5, RequestOptions(tls=tls))
            assert result.status_code == 0
            assert result.error is not None
            assert result.error.startswith("TLS configuration error"), result.error
    assert transport._tls._custom == {}


async def test_without_memfd_the_client_key_is_loaded_from_a_file_removed_at_once(
    tmp_path: Path,
    server_ca: CertificateAuthority,
    client_ca: CertificateAuthority,
    transport: AsyncioTransport,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Where the system has no anonymous in-memory files, the certificate still loads, and
    the temporary file that carried the key is gone afterwards."""
    monkeypatch.delattr(os, "memfd_create", raising=False)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    options = client_options(server_ca, client_ca.issue("hookline-client", client=True))
    async with keep_alive_server(server_context(tmp_path, server_ca, client_ca)) as server:
        result = await transport.post(
            f"https://localhost:{server.port}/hook", b"{}", {}, 5, options
        )
    assert (result.status_code, result.error) == (200, None)
    assert list(scratch.iterdir()) == []


async def test_tls_options_do_not_change_plain_http(
    transport: AsyncioTransport,
) -> None:
    """An http URL ignores TLS settings, even unusable ones: there is no handshake."""
    options = RequestOptions(tls=TlsOptions(ca_bundle="not a certificate"))
    async with keep_alive_server() as server:
        result = await transport.post(server.url("/echo"), b"{}", {}, 5, options)
    assert (result.status_code, result.error) == (200, None)


@contextlib.asynccontextmanager
async def dripping_listener(head: bytes, drip: bytes) -> AsyncIterator[asyncio.Event]:
    """A receiver that reads the request, writes ``head`` at once and then ``drip`` one
    byte every 20 ms for as long as the connection stays open; yields an event set once
    the client has closed it, with the listener's port as ``event.port``."""
    closed = asyncio.Event()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(head)
            for byte in drip:
                await writer.drain()
                await asyncio.sleep(0.02)
                writer.write(bytes([byte]))
        except ConnectionError:
            pass
        finally:
            closed.set()
            writer.close()

    listener = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    closed.port = listener.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    try:
        yield closed
    finally:
        listener.close()
        await listener.wait_closed()


@pytest.mark.parametrize(
    ("head", "drip"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", b"x" * 100000),
        (b"HTTP/1.1 200 OK\r\n", b"X-Slow: " + b"y" * 100000),
    ],
    ids=["body", "headers"],
)
async def test_a_receiver_dripping_bytes_is_cut_off_at_the_deadline_as_a_timeout(
    transport: AsyncioTransport, head: bytes, drip: bytes
) -> None:
    """A slow receiver that keeps sending a byte at a time never stretches an attempt: at
    the deadline the connection is dropped and the attempt is a timeout, status 0."""
    async with dripping_listener(head, drip) as closed:
        port = closed.port  # type: ignore[attr-defined]
        result = await transport.post(f"http://127.0.0.1:{port}/", b"{}", {}, 0.5)
        async with asyncio.timeout(5):
            await closed.wait()
    assert_timed_out(result, 0.5)
    assert transport._idle_count == 0


async def test_an_endless_response_head_is_cut_at_its_cap(transport: AsyncioTransport) -> None:
    """A receiver that answers with one header longer than the head cap is refused as soon
    as the cap is passed (status 0), instead of filling memory until the deadline."""
    endless = b"HTTP/1.1 200 OK\r\nX-Big: " + b"z" * (RESPONSE_HEAD_LIMIT_BYTES * 4)
    async with fixed_answer(endless) as port:
        result = await transport.post(f"http://127.0.0.1:{port}/", b"{}", {}, 5)
    assert result.status_code == 0
    assert result.error == (
        f"invalid HTTP response: no end of headers in {RESPONSE_HEAD_LIMIT_BYTES} bytes"
    )
    assert result.duration_ms < 4000
