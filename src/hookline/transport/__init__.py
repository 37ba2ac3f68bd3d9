"""Outbound HTTP for deliveries: one SSRF-guarded client and the types around it.

Below ``delivery/`` and above ``domain/``: it knows nothing of messages, endpoints or the
store. Its modules are private; what other layers may use is listed in ``__all__``
(pinned by ``tests/unit/test_transport_api.py``).

- ``_types``: ``HttpResult``, the ``Transport`` seam and its per-request ``RequestOptions``
  (response byte cap, ``TlsOptions``).
- ``_ssrf``: ``SsrfPolicy`` and ``GuardedResolver``, the guard at the network edge.
- ``_target``: ``parse_target``, the one reading of a delivery URL.
- ``_headers``: the request head (defaults, refused characters, framing).
- ``_tls``: SSL contexts, one per distinct custom CA bundle and client certificate, and
  ``tls_refusal``, whether settings can make one at all.
- ``_sockets``: TCP connections to IP literals, with no name resolution.
- ``_proxy``: CONNECT tunnels through an operator's HTTP proxy, to vetted addresses.
- ``_asyncio``: ``AsyncioTransport``, the client.
"""

from hookline.transport._asyncio import AsyncioTransport
from hookline.transport._ssrf import GuardedResolver, Lookup, SsrfBlocked, SsrfPolicy
from hookline.transport._target import NonCanonical, Target, parse_target
from hookline.transport._tls import tls_refusal
from hookline.transport._types import (
    DEFAULT_OPTIONS,
    RESPONSE_BODY_LIMIT_BYTES,
    HttpResult,
    RequestOptions,
    TlsOptions,
    Transport,
)

__all__ = [
    "DEFAULT_OPTIONS",
    "RESPONSE_BODY_LIMIT_BYTES",
    "AsyncioTransport",
    "GuardedResolver",
    "HttpResult",
    "Lookup",
    "NonCanonical",
    "RequestOptions",
    "SsrfBlocked",
    "SsrfPolicy",
    "Target",
    "TlsOptions",
    "Transport",
    "parse_target",
    "tls_refusal",
]
