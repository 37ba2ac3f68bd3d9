"""What only the pycurl transport has to prove: one easy handle for a run of requests, the
bound on connections, and the guards inside curl's callbacks.

Behaviour shared with the other transports is pinned in ``test_transport.py``, and with the
asyncio transport (connection reuse, re-vetting, release on close and cancellation, TLS
names, uvloop) in ``test_pooled_transports.py``.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator

import pycurl
import pytest

from hookline.delivery import curl_transport
from hookline.delivery.curl_transport import CurlTransport
from hookline.delivery.target import Target, parse_target
from hookline.delivery.transport import SsrfPolicy
from tests.integration.keep_alive import KeepAliveServer, keep_alive_server

DEV = SsrfPolicy(allow_private=True)


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as state:
        yield state


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


def test_curl_is_never_allowed_to_resolve_a_name_itself() -> None:
    """Without a pin, curl's own lookup is aborted before it starts, with a reason."""
    handle = curl_transport._Handle()
    try:
        target = parse_target("http://nowhere.test:1/", DEV)
        assert isinstance(target, Target) and target.literal is None
        plan = curl_transport._Plan.of(target)
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
        target = parse_target(url, DEV)
        assert isinstance(target, Target)
        assert target.literal == frozenset({ipaddress.ip_address("127.0.0.1")})
        handle.start(curl_transport._Plan.of(target), vetted)
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
