"""The transport's contract: what a caller may ask of one attempt, what it gives back, and
the seam it is sent through."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

RESPONSE_BODY_LIMIT_BYTES = 20 * 1024
"""How much of a response body is read unless the caller says otherwise."""


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """One endpoint's TLS: whom to trust, and which certificate to present (mTLS).

    Equal options share one SSL context, built on first use, and pooled connections are
    kept apart by them: a connection made with one client certificate never carries a
    request made with another, or with none.
    """

    ca_bundle: str | None = None
    """PEM text of the CA certificates trusted for this endpoint, instead of the system's
    (as curl's ``--cacert``)."""
    client_certificate: str | None = None
    """PEM text of the certificate presented to the server (its chain may follow)."""
    client_key: str | None = field(default=None, repr=False)
    """PEM text of that certificate's private key, unencrypted. Never shown in ``repr``."""

    def __post_init__(self) -> None:
        if (self.client_certificate is None) != (self.client_key is None):
            raise ValueError("a client certificate and its private key go together")


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """What one request may ask beyond its URL, body, headers and deadline; the defaults
    are hookline's behaviour for an endpoint that asks for nothing."""

    max_response_bytes: int = RESPONSE_BODY_LIMIT_BYTES
    """How much of the response body is read and kept. Past it the status stands, the
    body is cut, and the connection is dropped rather than read to the end."""
    tls: TlsOptions | None = None
    """Custom trust and a client certificate for https; None is the system's trust."""

    def __post_init__(self) -> None:
        if self.max_response_bytes < 0:
            raise ValueError("max_response_bytes cannot be negative")


DEFAULT_OPTIONS = RequestOptions()


@dataclass(frozen=True, slots=True)
class HttpResult:
    status_code: int
    """The HTTP status; 0 when there was no HTTP response, and ``error`` says why."""
    body: bytes
    """The response body, cut at ``RequestOptions.max_response_bytes``."""
    error: str | None
    """Why there is no response (status 0), e.g. ``timeout after 15.0s``."""
    duration_ms: int
    retry_after: str | None
    """The raw Retry-After header, if any."""


class Transport(Protocol):
    """Sends one delivery; never raises for network trouble, it reports status 0 instead.

    ``timeout`` is the whole attempt's deadline in seconds: name resolution, connecting,
    the TLS handshake, writing the request and reading the answer all fit in it.
    """

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> HttpResult: ...

    async def close(self) -> None: ...


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter`` reading)."""
    return int((time.perf_counter() - started) * 1000)


def failure(reason: str, started: float) -> HttpResult:
    """No HTTP response: status 0 and the reason."""
    return HttpResult(0, b"", reason, elapsed_ms(started), None)
