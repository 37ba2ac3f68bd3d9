"""Deliveries through an operator's HTTP proxy, in CONNECT tunnels to vetted addresses.

The SSRF guard does not move to the proxy: the destination is resolved and vetted here, as
without a proxy, and the CONNECT names the vetted IP address and port, never the URL's host
name. The proxy has nothing to resolve, so neither its DNS nor a name it reads differently
can steer it to an address the guard refused. Inside the tunnel the request is what it would
be directly: the Host header and the TLS server name are the URL's. Plain http goes through
a tunnel too, rather than as a proxy request with an absolute URI, for the same reason.

The proxy itself is the operator's choice and is not vetted (it usually sits on a private
network). It is spoken to in plain HTTP (``http://host:port``); user information in its
URL is sent as ``Proxy-Authorization: Basic`` (RFC 9110 §11.7.1, RFC 7617).
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote

from yarl import URL

from hookline.transport._sockets import connect_failure, connect_socket

PROXY_ANSWER_LIMIT_BYTES = 16 * 1024
"""The most a proxy may say before its answer to CONNECT ends (its status and headers)."""


class ProxyError(OSError):
    """The proxy could not be reached, or did not open the tunnel; the message says which."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """Where the proxy listens, and the credentials it is given."""

    host: str
    port: int
    authorization: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        """``http://[user:password@]host:port``; ``ValueError`` for anything else."""
        try:
            parsed = URL(url)
            host, port = parsed.raw_host, parsed.port
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the proxy URL must be http://host:port: {exc}") from exc
        if parsed.scheme != "http" or not host or port is None:
            raise ValueError("the proxy URL must be http://host:port")
        if parsed.raw_path not in ("", "/") or parsed.raw_query_string or parsed.raw_fragment:
            raise ValueError("the proxy URL must be http://host:port, without a path")
        authorization = None
        if parsed.raw_user is not None:
            user, password = unquote(parsed.raw_user), unquote(parsed.raw_password or "")
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            authorization = f"Basic {token}"
        return cls(host, port, authorization)


async def open_tunnel(
    proxy: Proxy, host: str, port: int, loop: asyncio.AbstractEventLoop
) -> socket.socket:
    """A socket through which bytes reach ``host`` (a vetted IP literal) on ``port``."""
    sock = await _connect_to_proxy(proxy, loop)
    try:
        authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        await loop.sock_sendall(sock, _connect_request(proxy, authority))
        await _read_answer(sock, authority, loop)
    except BaseException:
        sock.close()
        raise
    return sock


async def _connect_to_proxy(proxy: Proxy, loop: asyncio.AbstractEventLoop) -> socket.socket:
    last: OSError | None = None
    for family, address in await _proxy_addresses(proxy, loop):
        try:
            return await connect_socket(family, (address, proxy.port), loop)
        except OSError as exc:
            last = exc
    raise ProxyError(f"proxy {connect_failure(last)}")


async def _proxy_addresses(
    proxy: Proxy, loop: asyncio.AbstractEventLoop
) -> list[tuple[socket.AddressFamily, str]]:
    """The proxy's addresses: its IP literal as written, or what its name resolves to."""
    try:
        literal = ipaddress.ip_address(proxy.host)
    except ValueError:
        pass
    else:
        return [(socket.AF_INET6 if literal.version == 6 else socket.AF_INET, str(literal))]
    try:
        infos = await loop.getaddrinfo(proxy.host, proxy.port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ProxyError(f"proxy connection failed: {proxy.host} did not resolve: {exc}") from exc
    return [(family, str(sockaddr[0])) for family, _, _, _, sockaddr in infos]


def _connect_request(proxy: Proxy, authority: str) -> bytes:
    """RFC 9110 §9.3.6: the target is the authority, and so is the Host header."""
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if proxy.authorization is not None:
        lines.append(f"Proxy-Authorization: {proxy.authorization}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _read_answer(
    sock: socket.socket, authority: str, loop: asyncio.AbstractEventLoop
) -> None:
    """Read the proxy's answer up to the end of its headers; a 2xx opens the tunnel.

    Nothing may follow the headers: the receiver does not speak first (neither HTTP nor
    TLS), so a byte there would be the proxy's, read as if it were the receiver's.
    """
    answer = b""
    while b"\r\n\r\n" not in answer:
        if len(answer) > PROXY_ANSWER_LIMIT_BYTES:
            raise ProxyError("proxy answered CONNECT with more headers than allowed")
        chunk = await loop.sock_recv(sock, 4096)
        if not chunk:
            raise ProxyError(f"proxy closed the connection before answering CONNECT {authority}")
        answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].decode("latin-1")
    version, _, code = status.partition(" ")
    if not version.startswith("HTTP/1.") or not code[:3].isdigit() or code[3:4] not in ("", " "):
        raise ProxyError(f"proxy gave an invalid answer to CONNECT: {status[:100]!r}")
    if not code.startswith("2"):
        raise ProxyError(f"proxy refused CONNECT {authority}: {code}")
    if rest:
        raise ProxyError("proxy sent data before the tunnel was used")
