"""Outgoing HTTP for deliveries, with the SSRF guard built into name resolution.

The guard sits in aiohttp's resolver: every address a host resolves to is checked, and the
connection is made to the vetted address while the request keeps the original Host header
and TLS SNI, so there is no window for DNS rebinding between check and connect. aiohttp
skips the resolver for IP-literal hosts, so those are checked before the request. Hosts
such as ``127.1`` or ``2130706433`` are not literals to aiohttp; they go to
``getaddrinfo``, which turns them into 127.0.0.1, and are refused there.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

import hookline
from hookline.domain.ssrf import Address, Network, deny_reason

RESPONSE_BODY_LIMIT_BYTES = 20 * 1024
USER_AGENT = f"hookline/{hookline.__version__}"


@dataclass(frozen=True, slots=True)
class HttpResult:
    status_code: int
    """0 when there was no HTTP response; ``error`` then says why."""
    body: bytes
    error: str | None
    duration_ms: int
    retry_after: str | None


class Transport(Protocol):
    """Sends one delivery; never raises for network trouble, it reports status 0 instead."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SsrfPolicy:
    allow_networks: tuple[Network, ...] = ()
    allow_private: bool = False

    def check(self, address: Address) -> str | None:
        return deny_reason(
            address, allow_networks=self.allow_networks, allow_private=self.allow_private
        )


class SsrfBlocked(OSError):
    """The destination resolved to an address the SSRF guard refuses."""


class GuardedResolver(AbstractResolver):
    """Resolves with the system resolver and refuses the host if any address is denied."""

    def __init__(self, policy: SsrfPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, family=family)
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
            reason = self._policy.check(address)
            if reason is not None:
                raise SsrfBlocked(f"blocked by SSRF guard: {host} resolves to {reason}")
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
                )
            )
        if not results:
            raise OSError(f"{host} did not resolve to any address")
        return results

    async def close(self) -> None:
        return None


class AiohttpTransport:
    """One pooled aiohttp session per worker; redirects are never followed."""

    def __init__(self, policy: SsrfPolicy, max_connections: int = 1000) -> None:
        self._policy = policy
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                use_dns_cache=False,
                resolver=GuardedResolver(self._policy),
            )
            self._session = aiohttp.ClientSession(
                connector=connector, trust_env=False, auto_decompress=False
            )
        return self._session

    def _literal_check(self, url: URL) -> str | None:
        """aiohttp does not resolve IP literals, so they are vetted here."""
        if url.scheme not in ("http", "https") or not url.host:
            return "invalid URL: scheme must be http or https and a host is required"
        try:
            address = ipaddress.ip_address(url.host)
        except ValueError:
            return None
        reason = self._policy.check(address)
        return None if reason is None else f"blocked by SSRF guard: {reason}"

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult:
        started = time.perf_counter()
        try:
            parsed = URL(url)
        except (ValueError, TypeError):
            return _failure("invalid URL", started)
        refused = self._literal_check(parsed)
        if refused is not None:
            return _failure(refused, started)
        sent = {"user-agent": USER_AGENT, "content-type": "application/json", **headers}
        try:
            async with self._client().post(
                parsed,
                data=body,
                headers=sent,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                content = await _read_capped(response.content, RESPONSE_BODY_LIMIT_BYTES)
                return HttpResult(
                    status_code=response.status,
                    body=content,
                    error=None,
                    duration_ms=_elapsed_ms(started),
                    retry_after=response.headers.get("retry-after"),
                )
        except TimeoutError:
            return _failure(f"timeout after {timeout:g}s", started)
        except aiohttp.ClientConnectorError as exc:
            return _failure(_connect_error(exc), started)
        except aiohttp.InvalidURL as exc:
            # aiohttp refuses non-canonical IPv4 spellings such as 127.1 outright.
            return _failure(f"invalid URL: {exc}", started)
        except aiohttp.ServerDisconnectedError:
            return _failure("server disconnected without a response", started)
        except (aiohttp.ClientError, OSError) as exc:
            return _failure(f"{type(exc).__name__}: {exc}", started)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_capped(stream: aiohttp.StreamReader, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = await stream.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    cause = exc.os_error
    if isinstance(cause, SsrfBlocked):
        return str(cause)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate error: {exc.certificate_error}"
    if isinstance(cause, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS resolution failed: {cause}"
    return f"connection failed: {cause.strerror or cause}"


def _elapsed_ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)


def _failure(reason: str, started: float) -> HttpResult:
    return HttpResult(0, b"", reason, _elapsed_ms(started), None)
