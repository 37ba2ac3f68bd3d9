"""A keep-alive HTTP/1.1 listener and a counting fake DNS, for the transports' own tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest


@dataclass
class KeepAliveServer:
    """An HTTP/1.1 listener that serves many requests per connection and counts them.

    ``/slow`` answers once ``release`` is set, ``/closing`` closes after answering. With
    ``hang_up_reused``, a request that is not the first on its connection is read and the
    connection closed without an answer, as a receiver does that dropped an idle
    connection just as the request was sent.
    """

    port: int = 0
    connections: list[int] = field(default_factory=list)
    open_connections: int = 0
    paths: list[str] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    slow_arrived: asyncio.Event = field(default_factory=asyncio.Event)
    hang_up_reused: bool = False
    chunked: bool = False
    """Answer with a chunked body instead of a Content-Length."""
    client_certificates: list[object] = field(default_factory=list)
    """Over TLS, what each connection's client presented (``peercert``; None for nothing)."""

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer.get_extra_info("peername")[1])
        if writer.get_extra_info("sslcontext") is not None:
            self.client_certificates.append(writer.get_extra_info("peercert"))
        self.open_connections += 1
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                path = head.split(b" ", 2)[1].decode()
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        await reader.readexactly(int(value))
                self.paths.append(path)
                if self.hang_up_reused and served:
                    break
                served += 1
                if path == "/slow":
                    self.slow_arrived.set()
                    async with asyncio.timeout(5):
                        await self.release.wait()
                closing = path == "/closing"
                framing = (
                    b"Transfer-Encoding: chunked\r\n" if self.chunked else b"Content-Length: 2\r\n"
                )
                body = b"2\r\nok\r\n0\r\n\r\n" if self.chunked else b"ok"
                writer.write(
                    b"HTTP/1.1 200 OK\r\n"
                    + framing
                    + (b"Connection: close\r\n" if closing else b"")
                    + b"\r\n"
                    + body
                )
                await writer.drain()
                if closing:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass
        finally:
            self.open_connections -= 1
            writer.close()


@contextlib.asynccontextmanager
async def keep_alive_server(tls: ssl.SSLContext | None = None) -> AsyncIterator[KeepAliveServer]:
    state = KeepAliveServer()
    listener = await asyncio.start_server(state.serve, "127.0.0.1", 0, ssl=tls)
    state.port = listener.sockets[0].getsockname()[1]
    try:
        yield state
    finally:
        state.release.set()
        listener.close()
        await listener.wait_closed()


@dataclass
class CountingDns:
    answers: dict[str, list[str]] = field(default_factory=dict)
    queries: list[str] = field(default_factory=list)


def counting_dns(monkeypatch: pytest.MonkeyPatch) -> CountingDns:
    """Answer getaddrinfo for the names in ``answers`` and record every query."""
    dns = CountingDns()
    loop = asyncio.get_running_loop()

    async def getaddrinfo(host: str, port: int, **kwargs: Any) -> list[Any]:
        dns.queries.append(host)
        if not dns.answers.get(host):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in dns.answers[host]]

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)
    return dns
