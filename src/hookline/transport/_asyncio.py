"""Outgoing HTTP for deliveries on asyncio protocols and httptools: hookline's one client.

A delivery is one small POST and one small answer, so the client is kept to that: one
``asyncio.Protocol`` per keep-alive HTTP/1.1 connection, llhttp (through httptools, which
uvicorn already brings) to read responses, and a pool of idle connections per scheme, host
and port. Against libcurl driven from the same loop it spent about a third of the CPU per
request (``docs/performance-decisions.md``): a connection stays registered with the loop while it is
pooled, where curl asks for its socket to be watched and unwatched on every transfer, and
no request is translated into and out of another library's handle.

The SSRF guard: a URL is read and vetted once by ``parse_target`` (IP literals checked,
non-canonical spellings never dialled), and every new connection to a host name starts with
a fresh resolution by ``GuardedResolver``, where one denied address refuses the whole host.
The socket is then connected to an address that resolution vetted, while Host and TLS
server name stay the URL's, so nothing can change between check and connect. A pooled
connection stays on the address it was vetted for, and a request that rides one needs no
lookup.

A connection the receiver closed while it sat idle (a keep-alive timeout shorter than ours,
as Node's 5 s) may only be found dead after the request is written. When a reused
connection ends before a single byte of answer, the request is sent once more on a fresh
connection, as curl does; the receiver cannot have answered the first.

With a proxy (given at construction, never taken from the environment), every new
connection is a CONNECT tunnel to the vetted address (``_proxy.py``), and the rest is the
same. Redirects are not followed, cookies are not kept, bodies are not compressed or
decompressed, and HTTP/1.1 is spoken.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Mapping
from typing import cast

import httptools

from hookline.instrumentation import NO_INSTRUMENTATION, ConnectionOpened, Instrumentation
from hookline.transport._headers import request_head
from hookline.transport._proxy import Proxy, ProxyError, open_tunnel
from hookline.transport._sockets import connect_failure, connect_socket
from hookline.transport._ssrf import (
    GuardedResolver,
    Lookup,
    SsrfBlocked,
    SsrfPolicy,
    non_canonical_reason,
    system_lookup,
)
from hookline.transport._target import NonCanonical, Target, parse_target
from hookline.transport._tls import TlsContexts
from hookline.transport._types import (
    DEFAULT_OPTIONS,
    HttpResult,
    RequestOptions,
    TlsOptions,
    elapsed_ms,
    failure,
)

_DEFAULT_POLICY = SsrfPolicy()
# aiohttp's keep-alive timeout: idle connections older than this are not reused.
_IDLE_CONNECTION_SECONDS = 15.0
# Parsed and vetted URLs are kept for this many entries.
_CACHE_SIZE = 4096
RESPONSE_HEAD_LIMIT_BYTES = 64 * 1024
"""Most bytes read before a response's final headers are complete (status line, headers,
any 1xx answers): llhttp sets no limit, and a receiver could otherwise fill memory with
one endless header within the deadline. The body has its own cap (``RequestOptions``)."""
_DISCONNECTED = "server disconnected without a response"
_CLOSED = "transport closed"

PoolKey = tuple[str, str, int, TlsOptions | None]
"""Scheme, host, port and TLS settings: connections are shared only within one key."""


class _Refused(Exception):
    """No connection could be made; the message is the result's reason."""


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection carrying one request at a time.

    httptools calls the ``on_*`` methods while ``data_received`` feeds it; the state they
    leave is the answer to the current request. The waiter is woken once that answer is in,
    cut short, or impossible.
    """

    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.waiter: asyncio.Future[None] | None = None
        self.closed = False
        self.idle_since = 0.0
        self.body_limit = 0
        self._answer_pending()

    def _answer_pending(self) -> None:
        """Forget the previous answer: nothing of the next one has arrived."""
        self.received = False
        self.informational = False
        self.final_headers = False
        self.complete = False
        self.keep_alive = False
        self.status = 0
        self.head_size = 0
        self.chunks: list[bytes] = []
        self.size = 0
        self.retry_after: str | None = None
        self.refusal: str | None = None
        self.timed_out = False

    def send(self, request: bytes, waiter: asyncio.Future[None], body_limit: int) -> None:
        """Reset the answer and write ``request``; ``waiter`` is woken when it is settled.
        At most ``body_limit`` bytes of the answer's body are kept."""
        self._answer_pending()
        self.body_limit = body_limit
        self.waiter = waiter
        transport = self.transport
        if transport is None or self.closed:
            self._wake()
            return
        transport.write(request)

    def body(self) -> bytes:
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)

    def stale(self) -> bool:
        """Closed before a byte of answer, by the receiver rather than by us: a pooled
        connection it dropped while idle, which never saw the request."""
        return not self.received and self.closed and self.refusal is None and not self.timed_out

    def expire(self) -> None:
        """The request's deadline passed: drop the connection and settle the answer as it is."""
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            self.timed_out = True
            self.abort()
            waiter.set_result(None)

    def abort(self) -> None:
        """Drop the connection at once: nothing more is read from or written to it."""
        self.closed = True
        if self.transport is not None:
            self.transport.abort()

    # -- asyncio.Protocol --------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        waiter = self.waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for, or after the answer: the connection is out of step.
            self.abort()
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse("invalid HTTP response: an upgrade nobody asked for")
        except httptools.HttpParserError as exc:
            self._refuse(f"invalid HTTP response: {exc}")
        if not self.final_headers and not self.closed:
            self.head_size += len(data)
            if self.head_size > RESPONSE_HEAD_LIMIT_BYTES:
                self._refuse(
                    f"invalid HTTP response: no end of headers in {RESPONSE_HEAD_LIMIT_BYTES} bytes"
                )

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if isinstance(exc, ssl.SSLError) and self.refusal is None and not self.received:
            # A TLS alert instead of an answer: the server refused our certificate
            # (TLS 1.3 sends that verdict after the client's handshake is done).
            self.refusal = f"TLS error: {exc}"
        self._wake()

    # -- httptools callbacks -----------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.complete:
            # A second answer to one request: keep the first, and never reuse a
            # connection that is out of step.
            self.keep_alive = False
            return
        # A 1xx answer's headers are not the final answer's.
        self.retry_after = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.complete:
            return
        if self.retry_after is None and name.lower() == b"retry-after":
            self.retry_after = value.decode("utf-8", "surrogateescape")

    def on_headers_complete(self) -> None:
        if self.complete:
            return
        status = self.parser.get_status_code()
        if 100 <= status < 200:
            self.informational = True
            return
        self.status = status
        self.final_headers = True

    def on_body(self, body: bytes) -> None:
        """Keep the body up to the limit; past it the status stands and the rest is not
        read, so the connection cannot be reused."""
        if self.complete:
            return
        room = self.body_limit - self.size
        if len(body) > room:
            if room > 0:
                self.chunks.append(body[:room])
                self.size = self.body_limit
            self.abort()
            self._wake()
            return
        self.chunks.append(body)
        self.size += len(body)

    def on_message_complete(self) -> None:
        if self.complete:
            return
        if self.informational:
            self.informational = False
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()
        self._wake()

    # ----------------------------------------------------------------------------------

    def _refuse(self, reason: str) -> None:
        if not self.final_headers:
            self.refusal = reason
        self.abort()
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class AsyncioTransport:
    """Deliveries over pooled keep-alive connections of the running loop."""

    def __init__(
        self,
        policy: SsrfPolicy = _DEFAULT_POLICY,
        max_connections: int = 1000,
        proxy: str | None = None,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
        lookup: Lookup = system_lookup,
    ) -> None:
        """``proxy``: an ``http://host:port`` HTTP proxy that every connection goes through,
        in a CONNECT tunnel to the vetted address; ``ValueError`` if it is not one.
        ``lookup``: how destination names are resolved (the system's resolver; a stub in
        tests), always through the SSRF guard."""
        self._policy = policy
        self._proxy = None if proxy is None else Proxy.from_url(proxy)
        self._resolver = GuardedResolver(policy, lookup)
        self._max_idle = max_connections
        self._targets: dict[str, Target | NonCanonical | str] = {}
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._idle_count = 0
        self._busy: set[_Connection] = set()
        self._tls = TlsContexts()
        self._instrumentation = instrumentation
        self._connections_heard = instrumentation.wants(ConnectionOpened)

    def _target(self, url: str) -> Target | NonCanonical | str:
        target = self._targets.get(url)
        if target is None:
            target = parse_target(url, self._policy)
            if len(self._targets) >= _CACHE_SIZE:
                del self._targets[next(iter(self._targets))]
            self._targets[url] = target
        return target

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> HttpResult:
        """Send one POST; ``timeout`` bounds all of it, from the lookup to the last byte."""
        started = time.perf_counter()
        target = self._target(url)
        if isinstance(target, str):
            return failure(target, started)
        if isinstance(target, NonCanonical):
            return await self._refuse_non_canonical(target.host, timeout, started)
        head = request_head(target, headers, len(body))
        if isinstance(head, str):
            return failure(head, started)
        request = head + body
        limit = options.max_response_bytes
        key = (target.scheme, target.host, target.port, options.tls)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        conn: _Connection | None = None
        try:
            try:
                conn = self._pooled(key, loop.time())
                if conn is not None:
                    await self._exchange(conn, request, limit, loop, deadline)
                    if conn.stale():
                        self._release(conn, loop)
                        conn = None
                if conn is None:
                    # One deadline for the lookup, the connection and the TLS handshake;
                    # the exchange that follows is held to the same one.
                    async with asyncio.timeout_at(deadline):
                        conn = await self._connect(target, key, options.tls, loop)
                    await self._exchange(conn, request, limit, loop, deadline)
            except TimeoutError:
                return failure(f"timeout after {timeout}s", started)
            except _Refused as exc:
                return failure(str(exc), started)
            if conn.timed_out and not conn.complete:
                # Headers in time but the body dripping past the deadline is a timeout as
                # much as silence is: the attempt held a slot for the whole deadline.
                return failure(f"timeout after {timeout}s", started)
            if conn.final_headers:
                # The receiver has answered: a failure after that only cut the body short.
                return HttpResult(
                    conn.status, conn.body(), None, elapsed_ms(started), conn.retry_after
                )
            return failure(conn.refusal or _DISCONNECTED, started)
        finally:
            if conn is not None:
                self._release(conn, loop)

    async def _refuse_non_canonical(self, host: str, timeout: float, started: float) -> HttpResult:
        """Say what a 127.1-style host would have reached; the lookup that finds out is held
        to the attempt's deadline like any other."""
        try:
            async with asyncio.timeout(timeout):
                reason = await non_canonical_reason(self._resolver, host)
        except TimeoutError:
            return failure(f"timeout after {timeout}s", started)
        return failure(reason, started)

    async def _exchange(
        self,
        conn: _Connection,
        request: bytes,
        body_limit: int,
        loop: asyncio.AbstractEventLoop,
        deadline: float,
    ) -> None:
        """Send ``request`` and wait for its answer, or for the deadline to drop the
        connection (a timer per request: cheaper than a timeout context per request)."""
        waiter: asyncio.Future[None] = loop.create_future()
        self._busy.add(conn)
        timer = loop.call_at(deadline, conn.expire)
        conn.send(request, waiter, body_limit)
        try:
            await waiter
        finally:
            timer.cancel()

    def _pooled(self, key: PoolKey, now: float) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            conn = idle.pop()
            self._idle_count -= 1
            if not conn.closed and now - conn.idle_since < _IDLE_CONNECTION_SECONDS:
                return conn
            conn.abort()
        return None

    def _release(self, conn: _Connection, loop: asyncio.AbstractEventLoop) -> None:
        """Pool a connection whose answer was read to the end; drop any other."""
        self._busy.discard(conn)
        conn.waiter = None
        conn.chunks = []
        if (
            not conn.complete
            or not conn.keep_alive
            or conn.closed
            or self._idle_count >= self._max_idle
        ):
            conn.abort()
            return
        now = loop.time()
        conn.idle_since = now
        idle = self._idle.setdefault(conn.key, [])
        # The oldest are at the front; let go of those too old to be used again.
        while idle and (idle[0].closed or now - idle[0].idle_since >= _IDLE_CONNECTION_SECONDS):
            idle.pop(0).abort()
            self._idle_count -= 1
        idle.append(conn)
        self._idle_count += 1

    async def _connect(
        self,
        target: Target,
        key: PoolKey,
        tls: TlsOptions | None,
        loop: asyncio.AbstractEventLoop,
    ) -> _Connection:
        """A new connection to an address vetted for ``target`` just now."""
        context = self._tls_context(tls) if target.tls else None
        started = loop.time()
        last: OSError | None = None
        for family, host in await self._addresses(target):
            try:
                sock = await self._dial(family, host, target.port, loop)
            except ProxyError as exc:
                raise _Refused(str(exc)) from exc
            except OSError as exc:
                last = exc
                continue
            try:
                _, conn = await loop.create_connection(
                    lambda: _Connection(key),
                    sock=sock,
                    ssl=context,
                    server_hostname=target.host.rstrip(".") if target.tls else None,
                )
            except ssl.SSLCertVerificationError as exc:
                raise _Refused(f"TLS certificate error: {exc.verify_message or exc}") from exc
            except ssl.SSLError as exc:
                raise _Refused(f"TLS error: {exc}") from exc
            except OSError as exc:
                raise _Refused(f"connection failed: {exc.strerror or exc}") from exc
            if self._connections_heard:
                opened = ConnectionOpened(target.scheme, loop.time() - started)
                self._instrumentation.emit(opened)
            return conn
        raise _Refused(connect_failure(last))

    async def _dial(
        self, family: socket.AddressFamily, host: str, port: int, loop: asyncio.AbstractEventLoop
    ) -> socket.socket:
        """A socket to ``host`` (a vetted IP literal): direct, or through the proxy."""
        if self._proxy is not None:
            return await open_tunnel(self._proxy, host, port, loop)
        return await connect_socket(family, (host, port), loop)

    async def _addresses(self, target: Target) -> list[tuple[socket.AddressFamily, str]]:
        if target.literal is not None:
            return [
                (socket.AF_INET6 if address.version == 6 else socket.AF_INET, str(address))
                for address in target.literal
            ]
        try:
            return await self._resolver.resolve(target.host, target.port)
        except SsrfBlocked as exc:
            raise _Refused(str(exc)) from exc
        except OSError as exc:
            raise _Refused(f"DNS resolution failed: {exc}") from exc

    def _tls_context(self, tls: TlsOptions | None) -> ssl.SSLContext:
        try:
            return self._tls.get(tls)
        except (ssl.SSLError, ValueError, OSError) as exc:
            raise _Refused(f"TLS configuration error: {exc}") from exc

    async def close(self) -> None:
        """Drop every connection; requests in flight end with "transport closed". The
        transport stays usable: a later request opens a new connection."""
        for conn in self._busy:
            conn.refusal = _CLOSED
            conn.abort()
            conn._wake()
        self._busy.clear()
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()
        self._idle_count = 0
