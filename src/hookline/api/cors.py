"""Cross-origin calls to the API from the browser pages an operator names
(``HOOKLINE_CORS_ORIGINS``), so that a customer-facing UI built on svix-react, or any page
holding a portal token, can call hookline directly.

The API authenticates with bearer tokens only, never cookies, so allowing an origin lets
its pages send the tokens they already hold and read the answers; it grants nothing a
token does not. Credentials mode is never allowed (``Access-Control-Allow-Credentials`` is
not sent), so no browser attaches cookies. Pages (``/portal``, ``/dashboard``) are not
covered: they are same-origin by design.

With no origin configured nothing here runs: ``HooklineApp`` holds no policy, and a
preflight gets the API's 405 as before.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import Any

PREFLIGHT = "(cors preflight)"
"""The route template under which preflights are counted (a bounded metrics label)."""
MAX_AGE_SECONDS = 600
"""How long a browser may reuse a preflight's answer (Chromium caps it at 7200)."""
ALLOWED_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOWED_HEADERS = (
    "accept, authorization, content-type, idempotency-key, svix-req-id, traceparent, "
    "tracestate, x-request-id"
)
"""What the Svix SDKs and hookline's own clients send; a preflight asking for another
header gets this list, and the browser refuses the call."""
EXPOSED_HEADERS = "x-request-id, retry-after, location"

Headers = list[tuple[bytes, bytes]]


def _header(scope: MutableMapping[str, Any], name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def is_preflight(scope: MutableMapping[str, Any]) -> bool:
    """An ``OPTIONS`` asking, on a page's behalf, whether a call may be made (the Fetch
    standard's CORS-preflight request)."""
    return (
        scope["method"] == "OPTIONS"
        and _header(scope, b"origin") is not None
        and _header(scope, b"access-control-request-method") is not None
    )


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    """The origins allowed (lowercase, as ``HOOKLINE_CORS_ORIGINS`` normalised them)."""

    origins: frozenset[str]

    @classmethod
    def from_origins(cls, origins: Iterable[str]) -> CorsPolicy | None:
        """None when no origin is configured: the API then answers no cross-origin call."""
        allowed = frozenset(origins)
        return cls(allowed) if allowed else None

    def allowed_origin(self, scope: MutableMapping[str, Any]) -> bytes | None:
        """The value of ``Access-Control-Allow-Origin`` for this request, or None when it
        came from no page or from a page whose origin is not allowed."""
        origin = _header(scope, b"origin")
        if origin is None:
            return None
        if "*" in self.origins:
            return b"*"
        return origin if origin.decode("latin-1").lower() in self.origins else None

    def headers(self, scope: MutableMapping[str, Any]) -> Headers:
        """The headers an answer to an allowed origin carries (errors included, so the
        page can read why it was refused)."""
        origin = self.allowed_origin(scope)
        if origin is None:
            return []
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
            (b"vary", b"origin"),
        ]

    def preflight_headers(self, scope: MutableMapping[str, Any]) -> Headers | None:
        """What a preflight from an allowed origin is answered with; None refuses it."""
        origin = self.allowed_origin(scope)
        if origin is None:
            return None
        return [
            (b"access-control-allow-origin", origin),
            (b"access-control-allow-methods", ALLOWED_METHODS.encode()),
            (b"access-control-allow-headers", ALLOWED_HEADERS.encode()),
            (b"access-control-max-age", str(MAX_AGE_SECONDS).encode()),
            (b"vary", b"origin"),
        ]
