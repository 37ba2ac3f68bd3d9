"""Outgoing HTTP for deliveries, with the SSRF guard built into name resolution.

The guard sits in aiohttp's resolver: every address a host resolves to is checked, one
denied address refuses the whole request, and aiohttp connects to an address the resolver
returned while the request keeps the original Host header and TLS SNI, so nothing can change
between check and connect (no DNS rebinding window). The DNS cache is off, so every new
connection is vetted; a pooled keep-alive connection stays on its vetted address.

aiohttp does not call the resolver for hosts it takes for IP literals (anything with a
``:``, or only digits and dots), so those are vetted here before the request. A literal
that ``ipaddress`` parses is checked directly; other digit-and-dot spellings (``127.1``,
``2130706433``), which aiohttp refuses as non-canonical, are refused here too, and the
reason comes from what ``getaddrinfo`` makes of them. Everything else, ``0x7f.1``
included, goes through the resolver, where ``getaddrinfo`` turns it into an address.

Redirects are not followed, cookies are not kept, proxies from the environment are ignored.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import re
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

# What aiohttp refuses in a header name or value (header injection); tab is allowed. The
# other transports refuse the same, in aiohttp's words.
FORBIDDEN_HEADER_CHARS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
FORBIDDEN_HEADER_REASON = (
    "ValueError: Forbidden control character detected in headers. "
    "Potential header injection attack."
)
_DEFAULT_HEADERS = {"User-Agent": USER_AGENT, "Content-Type": "application/json"}
_NUMERIC = socket.AI_NUMERICHOST | socket.AI_NUMERICSERV
_BODY_ERRORS = (aiohttp.ClientError, OSError, TimeoutError)
_TIMEOUT_CACHE_SIZE = 64


@dataclass(frozen=True, slots=True)
class HttpResult:
    status_code: int
    """The HTTP status; 0 when there was no HTTP response, and ``error`` says why."""
    body: bytes
    """The response body, cut at ``RESPONSE_BODY_LIMIT_BYTES``."""
    error: str | None
    """Why there is no response (status 0), e.g. ``timeout after 15.0s``."""
    duration_ms: int
    retry_after: str | None
    """The raw Retry-After header, if any."""


class Transport(Protocol):
    """Sends one delivery; never raises for network trouble, it reports status 0 instead."""

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult: ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SsrfPolicy:
    """Which destinations are allowed: public addresses, plus the listed networks, plus
    private and loopback ranges when ``allow_private`` (dev mode)."""

    allow_networks: tuple[Network, ...] = ()
    allow_private: bool = False

    def check(self, address: Address) -> str | None:
        """None when ``address`` may be connected to, else the reason it may not."""
        return deny_reason(
            address, allow_networks=self.allow_networks, allow_private=self.allow_private
        )


class SsrfBlocked(OSError):
    """The destination is, or resolves to, an address the SSRF guard refuses."""


class GuardedResolver(AbstractResolver):
    """Resolves with ``getaddrinfo`` and refuses the host if any address is denied."""

    def __init__(self, policy: SsrfPolicy) -> None:
        self._policy = policy

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, family=family, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG
        )
        results: list[ResolveResult] = []
        for fam, _, proto, _, sockaddr in infos:
            if fam != socket.AF_INET and fam != socket.AF_INET6:
                continue
            resolved = str(sockaddr[0])
            # A link-local IPv6 answer carries its zone ("fe80::1%eth0"): the zone is
            # kept for the connection, the address alone is judged.
            reason = self._policy.check(ipaddress.ip_address(resolved.partition("%")[0]))
            if reason is not None:
                raise SsrfBlocked(f"blocked by SSRF guard: {reason} (resolved from {host})")
            results.append(
                ResolveResult(
                    hostname=host,
                    host=resolved,
                    port=int(sockaddr[1]),
                    family=fam,
                    proto=proto,
                    flags=_NUMERIC,
                )
            )
        if not results:
            raise OSError(f"{host} did not resolve to any IP address")
        return results

    async def close(self) -> None:
        return None


async def non_canonical_reason(resolver: GuardedResolver, host: str) -> str:
    """127.1, 2130706433, ...: never connected to; say what it would have reached."""
    try:
        await resolver.resolve(host, 0, socket.AF_UNSPEC)
    except SsrfBlocked as exc:
        return str(exc)
    except OSError:
        pass
    return f"invalid URL: {host} is not a canonical IP address"


class AiohttpTransport:
    """One pooled aiohttp session, created on first use inside the running loop."""

    def __init__(self, policy: SsrfPolicy = SsrfPolicy(), max_connections: int = 1000) -> None:
        self._policy = policy
        self._resolver = GuardedResolver(policy)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _client(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                use_dns_cache=False,
                resolver=self._resolver,
            )
            session = self._session = aiohttp.ClientSession(
                connector=connector,
                headers=_DEFAULT_HEADERS,
                # The body is stored as received, so do not ask for a compressed one.
                skip_auto_headers=("Accept-Encoding",),
                auto_decompress=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
            )
        return session

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(seconds)
        if timeout is None:
            timeout = aiohttp.ClientTimeout(total=seconds)
            if len(self._timeouts) < _TIMEOUT_CACHE_SIZE:
                self._timeouts[seconds] = timeout
        return timeout

    async def _refuse_literal(self, host: str) -> str | None:
        """Vet a host aiohttp will connect to without calling the resolver."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return await non_canonical_reason(self._resolver, host)
        reason = self._policy.check(address)
        return None if reason is None else f"blocked by SSRF guard: {reason}"

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult:
        started = time.perf_counter()
        try:
            target = URL(url)
        except (ValueError, TypeError):
            return failure("invalid URL", started)
        if target.scheme != "http" and target.scheme != "https":
            return failure("invalid URL: scheme must be http or https", started)
        host = target.raw_host
        if not host:
            return failure("invalid URL: a host is required", started)
        if ":" in host or host.replace(".", "").isdigit():
            refused = await self._refuse_literal(host)
            if refused is not None:
                return failure(refused, started)
        try:
            async with self._client().post(
                target,
                data=body,
                headers=headers,
                allow_redirects=False,
                timeout=self._timeout(timeout),
            ) as response:
                content = await _read_capped(response.content)
                return HttpResult(
                    response.status,
                    content,
                    None,
                    elapsed_ms(started),
                    response.headers.get("Retry-After"),
                )
        except TimeoutError:
            return failure(f"timeout after {timeout}s", started)
        except aiohttp.ClientConnectorError as exc:
            return failure(_connect_error(exc), started)
        except aiohttp.InvalidURL as exc:
            return failure(f"invalid URL: {exc}", started)
        except aiohttp.ServerDisconnectedError:
            return failure("server disconnected without a response", started)
        except aiohttp.ClientResponseError as exc:
            return failure(f"invalid HTTP response: {exc.message}", started)
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return failure(f"{type(exc).__name__}: {exc}", started)

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()


async def _read_capped(content: aiohttp.StreamReader) -> bytes:
    """Up to the limit; a body cut short by the peer or the clock keeps what arrived.

    The response status stands either way: the receiver has already answered.
    """
    limit = RESPONSE_BODY_LIMIT_BYTES
    try:
        data = await content.read(limit)
    except _BODY_ERRORS:
        return b""
    if not data or len(data) >= limit or content.at_eof():
        return data
    chunks = [data]
    size = len(data)
    try:
        while size < limit:
            chunk = await content.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except _BODY_ERRORS:
        pass
    return b"".join(chunks)


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    cause = exc.os_error
    if isinstance(cause, SsrfBlocked):
        return str(cause)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"TLS certificate error: {exc.certificate_error}"
    if isinstance(exc, aiohttp.ClientSSLError):
        return f"TLS error: {cause}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"DNS resolution failed: {cause}"
    # Happy eyeballs folds several refusals into one OSError that keeps the errno.
    if cause.errno == errno.ECONNREFUSED:
        return "connection refused"
    return f"connection failed: {cause.strerror or cause}"


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter`` reading)."""
    return int((time.perf_counter() - started) * 1000)


def failure(reason: str, started: float) -> HttpResult:
    """No HTTP response: status 0 and the reason."""
    return HttpResult(0, b"", reason, elapsed_ms(started), None)
