"""Rules every input obeys, whichever face it came through (API, CLI, console).

The API's wire models (``api/schemas.py``) declare the same limits so that a bad request is
refused with a 422 naming its field before anything runs, and the OpenAPI document shows
them; the operations apply these functions again because the other faces and the upsert
paths (where a path segment becomes a stored uid or name) do not pass through those models.
Each check raises ``InvalidValue`` (a ``ValueError``) whose message says what to send.

The limits exist because a value the store or a receiver cannot take would otherwise be
accepted and fail later: a 2**63 rate overflows a PostgreSQL integer, a date in year 9999
overflows an id, a NUL cannot be stored in PostgreSQL text, a line break in a uid forges
log lines, and a URL with port 99999 fails every delivery.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

KEY_PATTERN = r"^[a-zA-Z0-9\-_.]+$"
"""Svix's pattern for uids, event type names, event ids, group names and feature flags."""
MAX_KEY_LENGTH = 256
MAX_NAME_LENGTH = 256
"""An application's name (Svix sets no bound; 256 is what any page shows whole)."""
MAX_DESCRIPTION_LENGTH = 8192
"""An endpoint's or event type's description (Svix sets no bound)."""
MAX_URL_LENGTH = 65536
"""Svix's bound on an endpoint URL."""
MAX_THROTTLE_RATE = 65535
"""Messages per second; Svix declares ``throttleRate`` a uint16."""
TAG_PATTERN = r"^[a-zA-Z0-9\-_./\\#]+$"
MAX_TAG_LENGTH = 128
INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
"""JSON integers in payloads and schemas must lie in [INT64_MIN, UINT64_MAX]: what orjson
(and PostgreSQL's and most receivers' parsers) can represent exactly."""
MAX_JSON_DEPTH = 128
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2100, 1, 1, tzinfo=UTC)

_KEY = re.compile(KEY_PATTERN)
_TAG = re.compile(TAG_PATTERN)
_TEXT_WHITESPACE = frozenset("\t\n\r")
_HOST_LABEL = re.compile(r"^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$")


class InvalidValue(ValueError):
    """An input breaks a rule; the message names the rule and what would be accepted."""


def check_key(value: str, what: str = "uid") -> str:
    """A uid, an event type name, an event id: 1 to 256 of ``a-z A-Z 0-9 - _ .``."""
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not _KEY.match(value):
        raise InvalidValue(
            f"{what} must be 1 to {MAX_KEY_LENGTH} characters of a-z, A-Z, 0-9, '-', '_', '.'"
        )
    return value


def check_name(value: str, what: str = "name") -> str:
    """A display name: 1 to 256 characters, no control character (no line break either)."""
    if not 1 <= len(value) <= MAX_NAME_LENGTH:
        raise InvalidValue(f"{what} must be 1 to {MAX_NAME_LENGTH} characters")
    if _has_control(value, allowed=frozenset()):
        raise InvalidValue(f"{what} must not contain control characters or line breaks")
    return value


def check_description(value: str, what: str = "description") -> str:
    """Free text: at most 8192 characters; tab and line breaks allowed, other controls not
    (NUL in particular, which PostgreSQL cannot store in text)."""
    if len(value) > MAX_DESCRIPTION_LENGTH:
        raise InvalidValue(f"{what} must be at most {MAX_DESCRIPTION_LENGTH} characters")
    if _has_control(value, allowed=_TEXT_WHITESPACE):
        raise InvalidValue(f"{what} must not contain control characters other than tab and CR/LF")
    return value


def check_tag(value: str) -> str:
    if not 1 <= len(value) <= MAX_TAG_LENGTH or not _TAG.match(value):
        raise InvalidValue(
            f"tags must be 1 to {MAX_TAG_LENGTH} characters of a-z, A-Z, 0-9, '-', '_', '.', "
            "'/', '\\', '#'"
        )
    return value


def check_throttle_rate(value: int) -> int:
    if not 1 <= value <= MAX_THROTTLE_RATE:
        raise InvalidValue(f"throttleRate must be between 1 and {MAX_THROTTLE_RATE}")
    return value


_DATE_TIME_TEXT = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")


def check_time_text(value: Any, what: str = "date-time") -> Any:
    """A date-time given as text must be ISO 8601 (date, then time): pydantic would also
    read ``0.5`` or ``1700000000`` as seconds since 1970, which no caller of ``before=``
    means and the document (``format: date-time``) does not allow."""
    if isinstance(value, str) and not _DATE_TIME_TEXT.match(value):
        raise InvalidValue(f"{what} must be an ISO 8601 date-time, like 2024-05-01T12:00:00Z")
    return value


def check_time(value: datetime, what: str = "date-time") -> datetime:
    """A date-time in UTC. One without an offset is read as UTC, as ``deliverAt`` always
    was (``domain/scheduling.py``) and as Svix's SDKs mean it; one outside 1970 to 2099 is
    refused, since ids cannot represent it (they count seconds from 2014 in 32 bits)."""
    when = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    try:
        when = when.astimezone(UTC)
    except OverflowError:
        when = MAX_TIME
    if not MIN_TIME <= when < MAX_TIME:
        raise InvalidValue(f"{what} must be from 1970-01-01 to 2099-12-31")
    return when


def _has_control(value: str, allowed: frozenset[str]) -> bool:
    return any(
        unicodedata.category(c) == "Cc" and c not in allowed for c in value if not c.isprintable()
    )


def check_url(value: str) -> str:
    """An endpoint URL hookline can deliver to: absolute ``http``/``https``, a host name or
    IP literal, a port from 1 to 65535, no whitespace or control character anywhere.

    The transport parses the URL again when it sends; a test checks that every URL accepted
    here is one it can dial, so no endpoint is created that fails every delivery.
    """
    if not 1 <= len(value) <= MAX_URL_LENGTH:
        raise InvalidValue(f"url must be 1 to {MAX_URL_LENGTH} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise InvalidValue("url must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise InvalidValue(f"url is not valid: {exc}") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidValue("url must be an absolute http:// or https:// URL with a host")
    if port is not None and not 1 <= port <= 65535:
        raise InvalidValue("url port must be between 1 and 65535")
    _check_host(parts.hostname, bracketed="[" in parts.netloc)
    return value


def _check_host(host: str, *, bracketed: bool) -> None:
    if bracketed:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            raise InvalidValue("url host in brackets must be an IPv6 address") from None
        return
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise InvalidValue("url host is not a valid domain name") from None
    labels = ascii_host.removesuffix(".").split(".")
    if len(ascii_host) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise InvalidValue(
            "url host must be a domain name (letters, digits, '-', '_' in dot-separated "
            "labels of at most 63) or an IP address"
        )
    # No top-level domain is numeric (RFC 3696 §2), so a host ending in one is an address:
    # only the canonical dotted quad is dialled (``127.1`` and ``0x7f.1`` never are).
    last = labels[-1].lower()
    if last.isdigit() or last.startswith("0x"):
        try:
            ipaddress.IPv4Address(ascii_host.removesuffix("."))
        except ValueError:
            raise InvalidValue(
                "url host looks like an IPv4 address but is not one in dotted-quad form"
            ) from None


def json_problem(value: Any, depth: int = 0) -> str | None:
    """Why a JSON value cannot be stored and sent faithfully, or None: integers beyond 64
    bits, NaN or infinities (which would be written as ``null``), nesting deeper than 128."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return None
    if isinstance(value, int):
        return None if INT64_MIN <= value <= UINT64_MAX else "integers must fit in 64 bits"
    if isinstance(value, float):
        return None if math.isfinite(value) else "numbers must be finite (no NaN or Infinity)"
    if depth >= MAX_JSON_DEPTH:
        return f"nesting must be at most {MAX_JSON_DEPTH} levels deep"
    items: Sequence[Any] | None = None
    if isinstance(value, Mapping):
        items = list(value.values())
    elif isinstance(value, (list, tuple)):
        items = value
    for item in items or ():
        problem = json_problem(item, depth + 1)
        if problem is not None:
            return problem
    return None


CHANNEL_CHARACTERS = r"a-zA-Z0-9\-_.:"
"""What a channel name may hold (Svix's pattern), for a regular expression's class."""
MAX_CHANNEL_LENGTH = 128
MAX_CHANNELS = 10
"""Channels one endpoint or message may name (Svix's limit)."""
