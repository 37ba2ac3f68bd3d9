"""The transport's contract: what a delivery attempt gives back, and the seam it is sent
through."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

RESPONSE_BODY_LIMIT_BYTES = 20 * 1024


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


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a ``time.perf_counter`` reading)."""
    return int((time.perf_counter() - started) * 1000)


def failure(reason: str, started: float) -> HttpResult:
    """No HTTP response: status 0 and the reason."""
    return HttpResult(0, b"", reason, elapsed_ms(started), None)
