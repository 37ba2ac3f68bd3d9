"""Outgoing HTTP for deliveries on libcurl's multi interface, with the same SSRF guard.

``CurlTransport`` is a drop-in alternative to ``AiohttpTransport`` that spends about half
the CPU per request: one ``pycurl.CurlMulti`` is driven from the running event loop
(``M_SOCKETFUNCTION`` registers readers and writers, ``M_TIMERFUNCTION`` a loop timer),
easy handles are reused, and keep-alive connections are pooled by the multi.

The guard has three layers, so that no single one has to be perfect:

1. IP literals are vetted in Python before anything else, exactly as ``AiohttpTransport``
   does: a canonical literal is checked against the policy, and non-canonical spellings
   (``127.1``, ``2130706433``) are refused outright, even in dev mode.
2. Host names are resolved in Python (``loop.getaddrinfo`` through ``GuardedResolver``), so
   every resolved address is vetted and one denied address refuses the whole host. curl is
   pinned to the vetted addresses with ``CURLOPT_RESOLVE`` and may not resolve on its own:
   ``RESOLVER_START_FUNCTION`` aborts any resolution curl would start for a name. Each easy
   handle has its own DNS cache (a private ``CurlShare``), so one request's pins never leak
   into another's, and the handle drops the pins of its previous host.
3. ``OPENSOCKETFUNCTION`` sees the address curl is about to connect to and refuses it unless
   this very request vetted it; the reason is kept for the result.

Every new connection is vetted by a fresh resolution, like aiohttp with its DNS cache off,
but a request that can ride an idle keep-alive connection should not pay for a lookup. So
a request to a name first runs with the addresses last vetted for it: if curl reuses a
pooled connection (which stays on the address it was vetted for), that is the whole cost;
if curl needs a new connection, the socket callback refuses it before it is opened, the
name is resolved and vetted afresh, and the request runs again. No new connection had
been opened, so nothing reached the receiver through one.

Redirects are not followed, cookies are not kept, proxies from the environment are ignored,
only http and https are spoken, and HTTP/1.1 is used as with aiohttp.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pycurl

from hookline.delivery.target import NonCanonical, Target, parse_target
from hookline.delivery.transport import (
    FORBIDDEN_HEADER_CHARS,
    FORBIDDEN_HEADER_REASON,
    RESPONSE_BODY_LIMIT_BYTES,
    USER_AGENT,
    GuardedResolver,
    HttpResult,
    SsrfBlocked,
    SsrfPolicy,
    elapsed_ms,
    failure,
    non_canonical_reason,
)
from hookline.domain.ssrf import Address

_DEFAULT_POLICY = SsrfPolicy()
_USER_AGENT_LINE = f"User-Agent: {USER_AGENT}".encode()
_CONTENT_TYPE_LINE = b"Content-Type: application/json"
# curl sends "Expect: 100-continue" for bodies over 1 KB and waits for the interim answer;
# aiohttp never sends it, and an empty value makes curl leave it out.
_NO_EXPECT_LINE = b"Expect:"
# aiohttp's keep-alive timeout: idle connections older than this are not reused.
_IDLE_CONNECTION_SECONDS = 15
# Plans (parsed and vetted URLs) and last-vetted addresses are kept for this many entries.
_CACHE_SIZE = 4096

# curl takes a long; 0 would mean no timeout at all.
_MAX_TIMEOUT_MS = 2**31 - 1
_E_ABORTED_BY_CALLBACK = 42
_E_COULDNT_CONNECT = 7
_E_OPERATION_TIMEDOUT = 28
_E_URL_MALFORMAT = 3
_E_PEER_FAILED_VERIFICATION = 60
_E_CLOSED = -1
_TLS_ERRORS = frozenset({35, 53, 54, 58, 59, 64, 66, 77, 80, 82, 83, 90, 91, 98})
_DISCONNECT_ERRORS = frozenset({52, 55, 56})
_PROTOCOL_ERRORS = frozenset({1, 8, 16, 18, 61, 92})


@dataclass(frozen=True, slots=True)
class _Plan:
    """What a URL turns into, computed once per URL: the policy is immutable."""

    target: Target
    url: str
    """The URL handed to curl, rebuilt from yarl's parse so both agree on the host."""
    host_line: bytes | None
    """An explicit Host header, where curl's own would differ from aiohttp's."""

    @classmethod
    def of(cls, target: Target) -> _Plan:
        url = f"{target.scheme}://{target.userinfo}{target.authority}{target.path_query}"
        host_line = None
        if target.host.endswith("."):
            # curl keeps the trailing dot in Host, aiohttp drops it: send aiohttp's.
            host_line = f"Host: {target.host_header}".encode()
        return cls(target, url, host_line)


@dataclass(frozen=True, slots=True)
class _Pins:
    """Addresses vetted for one ``host:port``, as ``CURLOPT_RESOLVE`` entries and as a set."""

    keys: tuple[str, ...]
    entries: list[str]
    vetted: frozenset[Address]


@functools.cache
def _ca_options() -> tuple[tuple[int, str], ...]:
    """Point the wheel's bundled libcurl at the system CA store Python's ssl uses."""
    paths = ssl.get_default_verify_paths()
    options: list[tuple[int, str]] = []
    if paths.cafile and os.path.isfile(paths.cafile):
        options.append((pycurl.CAINFO, paths.cafile))
    if paths.capath and os.path.isdir(paths.capath):
        options.append((pycurl.CAPATH, paths.capath))
    return tuple(options)


class _Descriptor:
    """A new socket's descriptor for pycurl, which hands curl a duplicate of it.

    pycurl drops its reference right after duplicating, so the original is closed then. A
    ``socket.socket`` would do the same, but with a ResourceWarning for every connection.
    """

    __slots__ = ("fd",)

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def __del__(self) -> None:
        os.close(self.fd)


class _Handle:
    """One reusable easy handle, its private DNS cache and the state of its current request.

    The callbacks are bound once at creation; each request only resets the state they use.
    """

    __slots__ = (
        "chunks",
        "curl",
        "discard",
        "final_headers",
        "future",
        "informational",
        "needs_fresh",
        "pinned",
        "plan",
        "refusal",
        "retry_after",
        "share",
        "size",
        "vetted",
    )

    def __init__(self) -> None:
        self.share = pycurl.CurlShare()
        # A private DNS cache: the pins of this handle's request are the only entries in it.
        self.share.setopt(pycurl.SH_SHARE, pycurl.LOCK_DATA_DNS)
        curl = self.curl = pycurl.Curl()
        curl.setopt(pycurl.SHARE, self.share)
        curl.setopt(pycurl.NOSIGNAL, 1)
        # pycurl 7.49 does not accept PROTOCOLS_STR; the bitmask means the same.
        curl.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.REDIR_PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        curl.setopt(pycurl.FOLLOWLOCATION, 0)
        curl.setopt(pycurl.PROXY, "")
        curl.setopt(pycurl.NOPROXY, "*")
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.SSL_VERIFYPEER, 1)
        curl.setopt(pycurl.SSL_VERIFYHOST, 2)
        for option, value in _ca_options():
            curl.setopt(option, value)
        # Pinned entries never expire; anything else curl would cache is not kept.
        curl.setopt(pycurl.DNS_CACHE_TIMEOUT, 0)
        curl.setopt(pycurl.MAXAGE_CONN, _IDLE_CONNECTION_SECONDS)
        curl.setopt(pycurl.WRITEFUNCTION, self._write)
        curl.setopt(pycurl.HEADERFUNCTION, self._header)
        curl.setopt(pycurl.OPENSOCKETFUNCTION, self._open_socket)
        curl.setopt(pycurl.RESOLVER_START_FUNCTION, self._resolver_start)
        self.pinned: tuple[str, ...] = ()
        self.discard = False
        self.future: asyncio.Future[tuple[int, str]] | None = None
        self.plan: _Plan | None = None
        self.vetted: frozenset[Address] | None = None
        self.chunks: list[bytes] = []
        self.size = 0
        self.final_headers = False
        self.informational = False
        self.retry_after: str | None = None
        self.refusal: str | None = None
        self.needs_fresh = False

    def start(self, plan: _Plan, vetted: frozenset[Address] | None) -> None:
        """Reset the per-request state. ``vetted`` None: no new connection may be opened."""
        self.plan = plan
        self.vetted = vetted
        self.chunks = []
        self.size = 0
        self.final_headers = False
        self.informational = False
        self.retry_after = None
        self.refusal = None
        self.needs_fresh = False

    def pin(self, pins: _Pins) -> None:
        """Pin the name to ``pins`` in this handle's cache and drop its previous host's pins."""
        stale = [f"-{key}" for key in self.pinned if key not in pins.keys]
        self.curl.setopt(pycurl.RESOLVE, [*stale, *pins.entries] if stale else pins.entries)
        self.pinned = pins.keys

    def body(self) -> bytes:
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def _write(self, data: bytes) -> int | None:
        """Keep the body up to the limit, then abort: the status already stands."""
        room = RESPONSE_BODY_LIMIT_BYTES - self.size
        if len(data) <= room:
            self.chunks.append(data)
            self.size += len(data)
            return None
        if room > 0:
            self.chunks.append(data[:room])
            self.size = RESPONSE_BODY_LIMIT_BYTES
        return 0

    def _header(self, line: bytes) -> int | None:
        """Note Retry-After and the end of the final (non-1xx) header block.

        Once the final headers are in, the receiver has answered: a later failure only cuts
        the body short. Trailers of a chunked body are ignored, as aiohttp ignores them. A
        status that is not three digits is refused (curl would read ``2000`` as 200).
        """
        if self.final_headers:
            return None
        if line[:5] == b"HTTP/":
            parts = line.split(None, 2)
            code = parts[1] if len(parts) > 1 else b""
            if len(code) != 3 or not code.isdigit():
                self.refusal = f"invalid HTTP response: bad status line {line.strip()!r}"
                return 0
            self.informational = code[:1] == b"1"
            self.retry_after = None
        elif line == b"\r\n" or line == b"\n":
            self.final_headers = not self.informational
        elif self.retry_after is None and line[:12].lower() == b"retry-after:":
            self.retry_after = line[12:].strip().decode("utf-8", "surrogateescape")
        return None

    def _open_socket(self, purpose: int, address: Any) -> _Descriptor | int:
        """Open a socket only to an address this request vetted itself."""
        vetted = self.vetted
        plan = self.plan
        if vetted is None:
            # A request on last time's addresses may only reuse a pooled connection.
            self.needs_fresh = True
            return pycurl.SOCKET_BAD
        family, socktype, protocol, sockaddr = address
        if family != socket.AF_INET and family != socket.AF_INET6:
            self.refusal = "blocked by SSRF guard: not an IP connection"
            return pycurl.SOCKET_BAD
        try:
            target = ipaddress.ip_address(sockaddr[0])
        except ValueError:
            self.refusal = f"blocked by SSRF guard: unparsable address {sockaddr[0]!r}"
            return pycurl.SOCKET_BAD
        if target not in vetted:
            host = plan.target.host if plan is not None else "the host"
            self.refusal = f"blocked by SSRF guard: {target} was not vetted for {host}"
            return pycurl.SOCKET_BAD
        try:
            return _Descriptor(socket.socket(family, socktype, protocol).detach())
        except OSError as exc:
            self.refusal = f"connection failed: {exc.strerror or exc}"
            return pycurl.SOCKET_BAD

    def _resolver_start(self, *_: object) -> int:
        """Abort any name resolution curl would start itself (the pins should prevent one).

        IP literals and numeric spellings go through this callback too, with no lookup
        behind them, so they may proceed; the socket callback still checks the address.
        """
        plan = self.plan
        if plan is not None and (plan.target.literal is not None or plan.target.numeric):
            return 0
        host = plan.target.host if plan is not None else "the host"
        self.refusal = f"blocked by SSRF guard: unvetted name resolution for {host}"
        return 1

    def close(self) -> None:
        self.curl.close()
        self.share.close()


class _Driver:
    """One CurlMulti driven by one event loop: sockets become readers and writers, curl's
    timer a loop timer; finished transfers complete their handle's future."""

    def __init__(self, loop: asyncio.AbstractEventLoop, max_connections: int) -> None:
        self.loop = loop
        self.closed = False
        self.fds: dict[int, int] = {}
        self.timer: asyncio.TimerHandle | None = None
        self.active: dict[pycurl.Curl, _Handle] = {}
        self.added = 0
        multi = self.multi = pycurl.CurlMulti()
        multi.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        multi.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        multi.setopt(pycurl.M_MAX_TOTAL_CONNECTIONS, max_connections)
        multi.setopt(pycurl.M_MAXCONNECTS, max_connections)

    def add(self, handle: _Handle) -> asyncio.Future[tuple[int, str]]:
        future: asyncio.Future[tuple[int, str]] = self.loop.create_future()
        handle.future = future
        self.active[handle.curl] = handle
        self.multi.add_handle(handle.curl)
        self.added += 1
        return future

    def detach(self, handle: _Handle) -> None:
        """Take a handle out mid-transfer (its caller was cancelled); curl drops the
        connection."""
        if self.active.pop(handle.curl, None) is not None:
            self.multi.remove_handle(handle.curl)
            self.added -= 1

    def _on_socket(self, what: int, fd: int, multi: object, socketp: object) -> None:
        if self.closed:
            return
        old = self.fds.get(fd, 0)
        new = 0 if what == pycurl.POLL_REMOVE else what & pycurl.POLL_INOUT
        if new == old:
            return
        loop = self.loop
        if (old ^ new) & pycurl.POLL_IN:
            if new & pycurl.POLL_IN:
                loop.add_reader(fd, self._act, fd, pycurl.CSELECT_IN)
            else:
                loop.remove_reader(fd)
        if (old ^ new) & pycurl.POLL_OUT:
            if new & pycurl.POLL_OUT:
                loop.add_writer(fd, self._act, fd, pycurl.CSELECT_OUT)
            else:
                loop.remove_writer(fd)
        if new:
            self.fds[fd] = new
        else:
            del self.fds[fd]

    def _on_timer(self, timeout_ms: int) -> None:
        timer = self.timer
        if timer is not None:
            timer.cancel()
            self.timer = None
        if timeout_ms >= 0 and not self.closed:
            self.timer = self.loop.call_later(
                timeout_ms / 1000, self._act, pycurl.SOCKET_TIMEOUT, 0
            )

    def _act(self, fd: int, events: int) -> None:
        if self.closed:
            return
        if fd == pycurl.SOCKET_TIMEOUT:
            self.timer = None
        try:
            _, running = self.multi.socket_action(fd, events)
        except pycurl.error:
            # A socket curl has already forgotten; the finished transfers are still due.
            running = -1
        if running < self.added:
            self._collect()

    def _collect(self) -> None:
        multi = self.multi
        while True:
            queued, succeeded, failed = multi.info_read()
            for curl in succeeded:
                self._finish(curl, 0, "")
            for curl, code, message in failed:
                self._finish(curl, code, message)
            if not queued:
                return

    def _finish(self, curl: pycurl.Curl, code: int, message: str) -> None:
        handle = self.active.pop(curl, None)
        if handle is None:
            return
        self.multi.remove_handle(curl)
        self.added -= 1
        future = handle.future
        if future is not None and not future.done():
            future.set_result((code, message))

    def close(self) -> list[_Handle]:
        """Stop watching every socket, fail what is in flight, close the multi and its
        connections; return the handles that were in flight, for closing."""
        self.closed = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        for fd, events in self.fds.items():
            if events & pycurl.POLL_IN:
                self.loop.remove_reader(fd)
            if events & pycurl.POLL_OUT:
                self.loop.remove_writer(fd)
        self.fds.clear()
        handles = list(self.active.values())
        for handle in handles:
            self.multi.remove_handle(handle.curl)
            if handle.future is not None and not handle.future.done():
                handle.future.set_result((_E_CLOSED, "transport closed"))
        self.active.clear()
        self.added = 0
        self.multi.close()
        return handles


class CurlTransport:
    """Deliveries over one CurlMulti, created on first use inside the running loop."""

    def __init__(self, policy: SsrfPolicy = _DEFAULT_POLICY, max_connections: int = 1000) -> None:
        self._policy = policy
        self._resolver = GuardedResolver(policy)
        self._max_connections = max_connections
        self._driver: _Driver | None = None
        self._idle: list[_Handle] = []
        self._plans: dict[str, _Plan | NonCanonical | str] = {}
        self._pins: dict[tuple[str, int], _Pins] = {}

    def _driver_for_loop(self) -> _Driver:
        driver = self._driver
        if driver is None:
            driver = self._driver = _Driver(asyncio.get_running_loop(), self._max_connections)
        return driver

    def _plan(self, url: str) -> _Plan | NonCanonical | str:
        plan = self._plans.get(url)
        if plan is None:
            plan = self._make_plan(url)
            if len(self._plans) >= _CACHE_SIZE:
                del self._plans[next(iter(self._plans))]
            self._plans[url] = plan
        return plan

    def _make_plan(self, url: str) -> _Plan | NonCanonical | str:
        """Parse and vet a URL as every transport does; a str is the refusal."""
        target = parse_target(url, self._policy)
        if not isinstance(target, Target):
            return target
        return _Plan.of(target)

    async def _non_canonical_reason(self, host: str) -> str:
        return await non_canonical_reason(self._resolver, host)

    async def _resolve(self, plan: _Plan, deadline: float, timeout: float) -> _Pins | str:
        """Resolve and vet afresh; remember the result for the next request to this host."""
        host, port = plan.target.host, plan.target.port
        remaining = deadline - time.perf_counter()
        try:
            async with asyncio.timeout(remaining):
                results = await self._resolver.resolve(host, port, socket.AF_UNSPEC)
        except SsrfBlocked as exc:
            return str(exc)
        except TimeoutError:
            return f"timeout after {timeout}s"
        except OSError as exc:
            return f"DNS resolution failed: {exc}"
        addresses: list[str] = []
        vetted: set[Address] = set()
        for result in results:
            text = result["host"]
            address = ipaddress.ip_address(text.partition("%")[0])
            vetted.add(address)
            addresses.append(f"[{text}]" if address.version == 6 else text)
        joined = ",".join(dict.fromkeys(addresses))
        names = [host]
        if host.endswith("."):
            names.append(host.rstrip("."))
        keys = tuple(f"{name}:{port}" for name in names)
        pins = _Pins(keys, [f"{key}:{joined}" for key in keys], frozenset(vetted))
        cache_key = (host, port)
        if cache_key not in self._pins and len(self._pins) >= _CACHE_SIZE:
            del self._pins[next(iter(self._pins))]
        self._pins[cache_key] = pins
        return pins

    def _acquire(self) -> _Handle:
        idle = self._idle
        return idle.pop() if idle else _Handle()

    def _release(self, handle: _Handle) -> None:
        handle.future = None
        handle.chunks = []
        if not handle.discard and len(self._idle) < self._max_connections:
            self._idle.append(handle)
        else:
            handle.close()

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], timeout: float
    ) -> HttpResult:
        started = time.perf_counter()
        plan = self._plan(url)
        if isinstance(plan, str):
            return failure(plan, started)
        if isinstance(plan, NonCanonical):
            return failure(await self._non_canonical_reason(plan.host), started)
        lines = _header_lines(headers, plan.host_line)
        if isinstance(lines, str):
            return failure(lines, started)
        deadline = started + timeout
        driver = self._driver_for_loop()
        handle = self._acquire()
        try:
            curl = handle.curl
            try:
                curl.setopt(pycurl.URL, plan.url)
                curl.setopt(pycurl.POSTFIELDS, body)
                curl.setopt(pycurl.HTTPHEADER, lines)
            except (pycurl.error, TypeError, ValueError) as exc:
                return failure(f"{type(exc).__name__}: {exc}", started)
            if plan.target.literal is not None:
                code, message = await self._run(driver, handle, plan, plan.target.literal, deadline)
            else:
                pins = self._pins.get((plan.target.host, plan.target.port))
                code = _E_COULDNT_CONNECT
                message = ""
                if pins is not None:
                    handle.pin(pins)
                    code, message = await self._run(driver, handle, plan, None, deadline)
                if pins is None or (code == _E_COULDNT_CONNECT and handle.needs_fresh):
                    fresh = await self._resolve(plan, deadline, timeout)
                    if isinstance(fresh, str):
                        return failure(fresh, started)
                    handle.pin(fresh)
                    code, message = await self._run(driver, handle, plan, fresh.vetted, deadline)
            if handle.final_headers:
                # The receiver has answered: a failure after that only cut the body short.
                return HttpResult(
                    curl.getinfo(pycurl.RESPONSE_CODE),
                    handle.body(),
                    None,
                    elapsed_ms(started),
                    handle.retry_after,
                )
            return failure(_reason(handle, code, message, timeout), started)
        finally:
            # Still in the multi only if this request was cancelled mid-transfer.
            driver.detach(handle)
            self._release(handle)

    async def _run(
        self,
        driver: _Driver,
        handle: _Handle,
        plan: _Plan,
        vetted: frozenset[Address] | None,
        deadline: float,
    ) -> tuple[int, str]:
        handle.start(plan, vetted)
        if driver.closed:
            return _E_CLOSED, "transport closed"
        remaining_ms = min(int((deadline - time.perf_counter()) * 1000), _MAX_TIMEOUT_MS)
        if remaining_ms < 1:
            return _E_OPERATION_TIMEDOUT, ""
        handle.curl.setopt(pycurl.TIMEOUT_MS, remaining_ms)
        return await driver.add(handle)

    async def close(self) -> None:
        driver, self._driver = self._driver, None
        idle, self._idle = self._idle, []
        if driver is not None:
            # Requests in flight get "transport closed"; their handles are closed when
            # those requests return, as they still read the handle's state.
            for handle in driver.close():
                handle.discard = True
        for handle in idle:
            handle.close()


def _header_lines(headers: Mapping[str, str], host_line: bytes | None) -> list[bytes] | str:
    """curl header lines: each default the caller did not set (in any case), then the
    caller's, in aiohttp's order. An empty value is written ``Name;``, which curl sends as an
    empty header (``Name:`` would remove it)."""
    lines: list[bytes] = []
    user_agent = content_type = expect = True
    host = host_line is not None
    for name, value in headers.items():
        if FORBIDDEN_HEADER_CHARS.search(name) or FORBIDDEN_HEADER_CHARS.search(value):
            return FORBIDDEN_HEADER_REASON
        lower = name.lower()
        if lower == "user-agent":
            user_agent = False
        elif lower == "content-type":
            content_type = False
        elif lower == "expect":
            expect = False
        elif lower == "host":
            host = False
        line = f"{name}: {value}" if value.strip(" \t") else f"{name};"
        lines.append(line.encode("utf-8", "surrogateescape"))
    defaults: list[bytes] = []
    if host and host_line is not None:
        defaults.append(host_line)
    if user_agent:
        defaults.append(_USER_AGENT_LINE)
    if content_type:
        defaults.append(_CONTENT_TYPE_LINE)
    if expect:
        defaults.append(_NO_EXPECT_LINE)
    return defaults + lines


def _reason(handle: _Handle, code: int, message: str, timeout: float) -> str:
    """Why there is no response, worded as ``AiohttpTransport`` words it."""
    if handle.refusal is not None:
        return handle.refusal
    if code == _E_OPERATION_TIMEDOUT:
        return f"timeout after {timeout}s"
    if code == 0:
        # curl counts a peer that hung up inside the header block as done.
        return "server disconnected without a response"
    if code == _E_COULDNT_CONNECT:
        os_errno = handle.curl.getinfo(pycurl.OS_ERRNO)
        if os_errno == errno.ECONNREFUSED:
            return "connection refused"
        return f"connection failed: {os.strerror(os_errno) if os_errno else message}"
    if code == _E_PEER_FAILED_VERIFICATION:
        return f"TLS certificate error: {message}"
    if code in _TLS_ERRORS:
        return f"TLS error: {message}"
    if code in _DISCONNECT_ERRORS:
        return "server disconnected without a response"
    if code in _PROTOCOL_ERRORS:
        return f"invalid HTTP response: {message}"
    if code == _E_URL_MALFORMAT:
        return f"invalid URL: {message}"
    if code == _E_CLOSED:
        return message
    if code == _E_ABORTED_BY_CALLBACK:
        return f"aborted: {message}"
    return f"curl error {code}: {message}"
