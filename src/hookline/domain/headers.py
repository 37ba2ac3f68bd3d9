"""Rules for the custom headers an endpoint adds to each delivery.

Hop-by-hop headers (RFC 9110 §7.6.1) and the ones hookline itself sets would corrupt
the request or its signature, so they are refused; credentials are stored but never
shown again, as Svix does with its ``sensitive`` list.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

# RFC 9110 §5.6.2 token characters.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

FORBIDDEN = frozenset(
    {
        "connection",
        "content-length",
        "content-type",
        "expect",
        "host",
        "keep-alive",
        "proxy-authenticate",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "webhook-id",
        "webhook-signature",
        "webhook-timestamp",
    }
)
FORBIDDEN_PREFIXES = ("svix-", "x-forwarded-", ":")
SENSITIVE_EXACT = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
SENSITIVE_PARTS = ("auth", "token", "secret", "password", "api-key", "apikey", "signature")


class InvalidHeader(ValueError):
    """A custom header cannot be used; the message says which and why."""


def normalize_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Return headers with lower-cased names, or raise ``InvalidHeader``."""
    result: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.strip().lower()
        if not _TOKEN.match(lowered):
            raise InvalidHeader(f"header name {name!r} is not a valid HTTP token")
        if lowered in FORBIDDEN or lowered.startswith(FORBIDDEN_PREFIXES):
            raise InvalidHeader(f"header {name!r} is set by hookline or is hop-by-hop")
        if "\r" in value or "\n" in value or "\0" in value:
            raise InvalidHeader(f"header {name!r} has a line break or NUL in its value")
        result[lowered] = value
    return result


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in SENSITIVE_EXACT or any(part in lowered for part in SENSITIVE_PARTS)


def redacted(headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split headers into the ones safe to show and the names of the withheld ones."""
    shown = {k: v for k, v in headers.items() if not is_sensitive(k)}
    hidden = sorted(k for k in headers if is_sensitive(k))
    return shown, hidden
