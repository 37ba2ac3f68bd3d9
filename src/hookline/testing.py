"""Test doubles that ship with hookline, for its own tests and for its users'.

``MockTransport`` takes httpx's shape (``httpx.MockTransport(handler)``): it is built with a
handler that receives each request as a ``MockRequest`` and returns the ``HttpResult`` it
should get, so code that sends deliveries (the delivery worker takes any ``Transport``) can
be tested without a socket::

    def handler(request: MockRequest) -> HttpResult:
        if request.url.endswith("/gone"):
            return answer(410)
        return answer(200, b"ok")

    transport = MockTransport(handler)

The handler may be a plain function or a coroutine function (to wait on an event, say).
What it raises reaches the caller: a real transport reports network trouble as status 0
(``no_answer``) and never raises, so a raising handler is a bug in the test.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from hookline.transport import DEFAULT_OPTIONS, HttpResult, RequestOptions

__all__ = ["MockRequest", "MockTransport", "answer", "no_answer"]


@dataclass(frozen=True, slots=True)
class MockRequest:
    """One request as the transport was asked to send it."""

    url: str
    headers: Mapping[str, str]
    """A copy of the caller's headers, as given (the transport's defaults are not added)."""
    body: bytes
    timeout: float
    """The deadline for the whole attempt, in seconds."""
    options: RequestOptions = DEFAULT_OPTIONS
    """What the caller asked beyond the defaults (response byte cap, TLS)."""


Handler = Callable[[MockRequest], HttpResult | Awaitable[HttpResult]]


class MockTransport:
    """A ``Transport`` whose every answer comes from ``handler``."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,
        options: RequestOptions = DEFAULT_OPTIONS,
    ) -> HttpResult:
        result = self._handler(MockRequest(url, dict(headers), body, timeout, options))
        if inspect.isawaitable(result):
            return await result
        return result

    async def close(self) -> None:
        return None


def answer(status_code: int, body: bytes = b"", *, retry_after: str | None = None) -> HttpResult:
    """The receiver answered with ``status_code`` (and ``body``, ``Retry-After``)."""
    return HttpResult(status_code, body, None, 0, retry_after)


def no_answer(reason: str) -> HttpResult:
    """No HTTP response, as a real transport reports one: status 0 and ``reason``
    (``"connection refused"``, ``"timeout after 15.0s"``, ...)."""
    return HttpResult(0, b"", reason, 0, None)
