"""What only the asyncio transport has to prove: its pool (concurrent requests, a
connection dropped while idle, idle expiry, no resend after a timeout), and its reading of
responses (framing it owns, a second answer to one request).

Behaviour shared with the other transports is pinned in ``test_transport.py``, and with curl
(connection reuse, re-vetting, release on close and cancellation, TLS names, uvloop) in
``test_pooled_transports.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hookline.delivery import asyncio_transport
from hookline.delivery.asyncio_transport import AsyncioTransport
from hookline.delivery.transport import SsrfPolicy
from tests.integration.keep_alive import KeepAliveServer, keep_alive_server

DEV = SsrfPolicy(allow_private=True)


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as state:
        yield state


@pytest.fixture
async def transport() -> AsyncIterator[AsyncioTransport]:
    pool = AsyncioTransport(DEV)
    yield pool
    await pool.close()


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
