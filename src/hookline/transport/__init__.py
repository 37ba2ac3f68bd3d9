"""Outbound HTTP for deliveries: one SSRF-guarded client and the types around it.

Below ``delivery/`` and above ``domain/``: it knows nothing of messages, endpoints or the
store. Its modules are private; what other layers may use is listed in ``__all__``
(pinned by ``tests/unit/test_transport_api.py``).

- ``_types``: ``HttpResult`` and the ``Transport`` seam.
- ``_ssrf``: ``SsrfPolicy`` and ``GuardedResolver``, the guard at the network edge.
- ``_target``: ``parse_target``, the one reading of a delivery URL.
- ``_headers``: the request head (defaults, refused characters, framing).
- ``_asyncio``: ``AsyncioTransport``, the client.
"""

from hookline.transport._asyncio import AsyncioTransport
from hookline.transport._ssrf import GuardedResolver, SsrfBlocked, SsrfPolicy
from hookline.transport._target import NonCanonical, Target, parse_target
from hookline.transport._types import RESPONSE_BODY_LIMIT_BYTES, HttpResult, Transport

__all__ = [
    "RESPONSE_BODY_LIMIT_BYTES",
    "AsyncioTransport",
    "GuardedResolver",
    "HttpResult",
    "NonCanonical",
    "SsrfBlocked",
    "SsrfPolicy",
    "Target",
    "Transport",
    "parse_target",
]
