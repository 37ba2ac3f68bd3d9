"""Slow and oversized clients, refused at the connection: what uvicorn's protocol lacks.

uvicorn closes a keep-alive connection idle between requests (``timeout_keep_alive``) and
nothing else: a connection that never finishes its headers, or a body that stops short of
its ``Content-Length``, is kept forever, and llhttp accepts headers of any number and size.
Hundreds of such connections were enough to make ``/health`` fail (issue 14). This
protocol, uvicorn's httptools one with coalesced writes underneath, adds:

- a header deadline: the request line and headers must be in ``header_timeout`` seconds
  after the connection opens, or after the first byte of a later request on it (408);
- a body deadline: the body must be in ``body_timeout`` seconds after the headers (408);
- limits on the request target (414), the number of header fields and the size of the
  whole head (431), counted as bytes arrive, so an endless header is cut off early;
- a cap on open connections per process. At the cap a new connection closes the one that
  has waited longest for a request (idle, or still sending its head), so a flood of slow
  connections only ever costs the slowest of them; only when every connection is busy
  with a request is the newcomer refused (503).

uvicorn's own ``limit_concurrency`` is not used: it answers 503 to the newcomer however
idle the connections holding the slots, which is exactly what a slowloris wants.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import httptools
import orjson

from hookline.api.write_coalescing import CoalescingHttpToolsProtocol
from hookline.config import Settings


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    header_timeout: float
    body_timeout: float
    max_connections: int
    max_url_bytes: int
    max_header_count: int
    max_header_bytes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ConnectionLimits:
        return cls(
            header_timeout=settings.header_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
            max_url_bytes=settings.max_url_bytes,
            max_header_count=settings.max_header_count,
            max_header_bytes=settings.max_header_bytes,
        )


class _Refused(Exception):
    """Raised from a parser callback to stop parsing a request that is being refused."""


class GuardedHttpToolsProtocol(CoalescingHttpToolsProtocol):
    """uvicorn's httptools protocol under ``limits`` (set by ``protocol_with``)."""

    limits: ClassVar[ConnectionLimits]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0
        """When the head or body now being read is overdue (loop time)."""
        self._phase = _IDLE
        self._waiting_since: float | None = None
        """When this connection began waiting for a request's head; None while a request
        is read or answered."""
        self._in_head = False
        """A byte of a request has come and its headers are not complete."""
        self._head_bytes = 0
        self._head_size = 0
        self._header_count = 0
        self._refusal: tuple[int, str, str] | None = None

    # -- connection ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        now = self.loop.time()
        self._waiting_since = now
        self._expect(_HEAD, now + self.limits.header_timeout)
        if len(self.connections) > self.limits.max_connections and self._over_cap():
            self._answer(503, "too_many_connections", "The server has too many connections open")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        self._waiting_since = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        counted = self._in_head
        if counted:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError:
            if self._refusal is None:
                self.logger.warning("Invalid HTTP request received.")
                self._answer(400, "invalid_request", "Invalid HTTP request")
            return
        if self._in_head:
            if not counted:
                # The head began in this chunk: count all of it. With pipelining that may
                # include the end of the previous request, which errs on the strict side.
                self._head_bytes += len(data)
            if self._head_bytes > self.limits.max_header_bytes:
                self._answer(431, "header_fields_too_large", self._head_too_large())

    # -- parser callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._head_bytes = 0
        self._head_size = 0
        self._header_count = 0
        if self._phase is _IDLE:
            # A later request on a kept-alive connection; a first one keeps the deadline
            # its connection opened with.
            self._expect(_HEAD, self.loop.time() + self.limits.header_timeout)

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._refuse(
                414,
                "uri_too_long",
                f"The request target exceeds {self.limits.max_url_bytes} bytes",
            )

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._header_count += 1
        if self._header_count > self.limits.max_header_count:
            self._refuse(
                431,
                "header_fields_too_many",
                f"A request may carry at most {self.limits.max_header_count} header fields",
            )
        self._head_size += len(name) + len(value) + 4
        if len(self.url) + self._head_size > self.limits.max_header_bytes:
            self._refuse_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._waiting_since = None
        self._expect(_BODY, self.loop.time() + self.limits.body_timeout)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._phase = _IDLE
        super().on_message_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._waiting_since = self.loop.time()

    # -- refusals -----------------------------------------------------------------------

    def _refuse_head(self) -> None:
        self._refuse(431, "header_fields_too_large", self._head_too_large())

    def _head_too_large(self) -> str:
        return f"The request line and headers exceed {self.limits.max_header_bytes} bytes"

    def _refuse(self, status: int, code: str, detail: str) -> None:
        """Answer ``status`` and close; from a parser callback, also stop the parser."""
        self._answer(status, code, detail)
        raise _Refused(detail)

    def _head_overdue(self) -> None:
        if self._in_head:
            self._answer(
                408,
                "request_timeout",
                f"The request headers did not arrive within {self.limits.header_timeout} s",
            )
        elif self._waiting_since is not None:
            # Not a byte of a request since the connection opened: nobody to answer.
            self._close()

    def _body_overdue(self) -> None:
        self._answer(
            408,
            "request_timeout",
            f"The request body did not arrive within {self.limits.body_timeout} s",
        )

    def _answer(self, status: int, code: str, detail: str, *, linger: bool = True) -> None:
        """Send a JSON error and close, unless an earlier answer is still being written on
        this connection (pipelining): then only close.

        With ``linger`` the close is a lingering one, as nginx and Apache do: our side is
        shut for writing and what the client still sends is read and dropped for up to
        ``LINGER_SECONDS``. Closing a socket with unread bytes makes the kernel send a
        reset, which can reach the client before the answer does, so a client refused in
        the middle of a large head would see "connection reset" instead of the 431.
        """
        if self._refusal is not None:
            return
        self._refusal = (status, code, detail)
        cycle = self.cycle
        if (cycle is None or cycle.response_complete or not cycle.response_started) and not (
            self.transport.is_closing()
        ):
            body = orjson.dumps({"code": code, "detail": detail})
            self.transport.write(
                b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
                b"connection: close\r\n\r\n%s" % (status, _REASONS[status], len(body), body)
            )
            if linger and self.transport.can_write_eof():
                self._disarm()
                self._waiting_since = None
                self.transport.write_eof()
                self._timer = self.loop.call_later(LINGER_SECONDS, self._close)
                return
        self._close()

    def _close(self) -> None:
        self._disarm()
        self._waiting_since = None
        if self._refusal is None:
            self._refusal = (0, "closed", "closed")
        if not self.transport.is_closing():
            self.transport.close()

    def _over_cap(self) -> bool:
        """Whether, counting only connections not already refused or closing, this one is
        past the cap and no waiting connection could be closed to make room for it."""
        live = sum(
            1
            for conn in self.connections
            if not conn.transport.is_closing() and getattr(conn, "_refusal", None) is None
        )
        if live <= self.limits.max_connections:
            return False
        return not self._evict_idlest()

    def _evict_idlest(self) -> bool:
        """Close the connection that has waited longest for a request; False if every
        other connection is busy with one."""
        idlest: GuardedHttpToolsProtocol | None = None
        for conn in self.connections:
            if conn is self or not isinstance(conn, GuardedHttpToolsProtocol):
                continue
            since = conn._waiting_since
            if (
                since is not None
                and conn._refusal is None
                and (idlest is None or since < (idlest._waiting_since or 0))
            ):
                idlest = conn
        if idlest is None:
            return False
        idlest._head_overdue_or_close()
        return True

    def _head_overdue_or_close(self) -> None:
        if self._in_head:
            self._answer(
                408,
                "request_timeout",
                "The request headers were too slow to arrive",
                linger=False,
            )
        else:
            self._close()

    # -- the one timer ------------------------------------------------------------------
    # A timer per request would be two more call_later and cancel pairs on the ingest
    # path. Instead each connection keeps one deadline, moved as requests go by, and one
    # timer that, when it fires early, is set again for the deadline that holds now.

    def _expect(self, phase: object, deadline: float) -> None:
        self._phase = phase
        self._deadline = deadline
        timer = self._timer
        if timer is None or timer.when() > deadline:
            if timer is not None:
                timer.cancel()
            self._timer = self.loop.call_at(deadline, self._check)

    def _check(self) -> None:
        self._timer = None
        phase = self._phase
        if phase is _IDLE:
            return
        if self._deadline - self.loop.time() > _EARLY_SECONDS:
            self._timer = self.loop.call_at(self._deadline, self._check)
        elif phase is _HEAD:
            self._head_overdue()
        else:
            self._body_overdue()

    def _disarm(self) -> None:
        self._phase = _IDLE
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


LINGER_SECONDS = 2.0
"""How long a refused connection is still read (and its bytes dropped) before it closes."""
_EARLY_SECONDS = 0.001
"""A loop may run a timer up to its clock's resolution early; that is not early enough
to set it again."""
_IDLE = object()
"""Waiting for nothing with a deadline: between requests (uvicorn's keep-alive timeout
applies) or while the application answers."""
_HEAD = object()
"""Waiting for a request's line and headers."""
_BODY = object()
"""Waiting for the rest of a request's body."""


_REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    414: b"URI Too Long",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}


def protocol_with(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class uvicorn is given: ``GuardedHttpToolsProtocol`` under ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
