"""Rules for the custom headers an endpoint adds to each delivery.

Hop-by-hop headers (RFC 9110 §7.6.1) and the ones hookline itself sets would corrupt
the request or its signature, so they are refused; credentials are stored but never
shown again, as Svix does with its ``sensitive`` list.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping

# RFC 9110 §5.6.2 token characters.
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")

MAX_CUSTOM_HEADERS = 50
"""Custom headers per endpoint."""
MAX_CUSTOM_HEADER_BYTES = 8192
"""Their total size as sent (``Name: value`` and CRLF, in UTF-8): common servers refuse a
request whose head passes 8 KiB (nginx's line buffer) to 16 KiB (Node.js's whole head), and
hookline's own headers must still fit beside them."""

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
    """Return the headers as given, names trimmed but in their own case, or raise
    ``InvalidHeader``.

    HTTP names are case-insensitive (RFC 9110 §5.1), but receivers hand-coded against a
    provider sometimes are not, so a name is sent as the user wrote it (Svix does the same).
    Two names that differ only in case would be one header sent twice: refused.
    """
    result: dict[str, str] = {}
    seen: dict[str, str] = {}
    for raw_name, value in headers.items():
        name = raw_name.strip()
        lowered = name.lower()
        if not _TOKEN.match(name):
            raise InvalidHeader(f"header name {raw_name!r} is not a valid HTTP token")
        if lowered in FORBIDDEN or lowered.startswith(FORBIDDEN_PREFIXES):
            raise InvalidHeader(f"header {raw_name!r} is set by hookline or is hop-by-hop")
        if _has_control(value):
            raise InvalidHeader(
                f"header {raw_name!r} has a control character in its value (RFC 9110 §5.5 "
                "allows visible characters, spaces and tabs only)"
            )
        if lowered in seen:
            raise InvalidHeader(f"headers {seen[lowered]!r} and {raw_name!r} are the same header")
        seen[lowered] = raw_name
        result[name] = value
    check_header_caps(result)
    return result


def check_header_caps(headers: Mapping[str, str]) -> None:
    """Refuse more than 50 custom headers, or more than 8 KiB of them."""
    if len(headers) > MAX_CUSTOM_HEADERS:
        raise InvalidHeader(
            f"{len(headers)} custom headers: an endpoint may have at most {MAX_CUSTOM_HEADERS}"
        )
    size = header_bytes(headers)
    if size > MAX_CUSTOM_HEADER_BYTES:
        raise InvalidHeader(
            f"custom headers take {size} bytes as sent: at most {MAX_CUSTOM_HEADER_BYTES} "
            "are allowed"
        )


def header_bytes(headers: Mapping[str, str]) -> int:
    """The size of the header lines as the transport writes them (``Name: value\r\n``)."""
    return sum(
        len(k.encode()) + len(v.encode("utf-8", "surrogatepass")) + 4 for k, v in headers.items()
    )


def _has_control(value: str) -> bool:
    """A control character other than HTAB (RFC 9110 §5.5: field values are visible
    characters, SP and HTAB; CR, LF and NUL would split the header, VT and DEL are refused
    by receivers and proxies alike)."""
    return any(unicodedata.category(c) == "Cc" and c != "\t" for c in value)


def merge_headers(
    current: Mapping[str, str], updates: Mapping[str, str], deletions: Iterable[str] = ()
) -> dict[str, str]:
    """``current`` with ``updates`` applied and ``deletions`` removed, names matched in any
    case: an update replaces the header of that name however it was written before."""
    replaced = {name.lower() for name in updates} | {name.lower() for name in deletions}
    kept = {name: value for name, value in current.items() if name.lower() not in replaced}
    merged = {**kept, **normalize_headers(updates)}
    if updates:
        # Deleting alone is always allowed, even from headers stored before the caps.
        check_header_caps(merged)
    return merged


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return lowered in SENSITIVE_EXACT or any(part in lowered for part in SENSITIVE_PARTS)


def redacted(headers: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """Split headers into the ones safe to show and the names of the withheld ones."""
    shown = {k: v for k, v in headers.items() if not is_sensitive(k)}
    hidden = sorted(k for k in headers if is_sensitive(k))
    return shown, hidden
