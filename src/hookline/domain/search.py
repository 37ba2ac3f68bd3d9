"""Searching deliveries across applications (the operator console's list): what a search
may ask for, read from its wire form, and what one found row holds.

Pure: ``operations/deliveries.py`` resolves the application and endpoint it names and the
store runs it (``Store.search_deliveries``). A row is one delivery (a message to one
endpoint), newest message first, paged by a keyset cursor (``Cursor``: the message id and
the endpoint id of the last row), so a page costs the same on the millionth message as on
the first.

The search string (``q``) is a few terms, all of which must hold:

- a word or a ``"quoted phrase"``: the payload's JSON text (keys and values) holds it,
  case-insensitively for ASCII, as a whole run of words (``cus_123`` matches the value
  ``"cus_123"``, not ``"cus_1234"``);
- ``path=value``: the payload's JSON value at that dotted path (``data.customer.id``; a
  number selects an array item) is that string or number, compared as text;
- ``header.<name>=value``: a header of the request hookline sends that the store can
  answer for. ``webhook-id`` (or ``svix-id``) is the message id, and ``traceparent`` the
  trace context the message carries (a 32-hex trace id or a whole ``traceparent``). The
  other headers are not searchable: the endpoint's custom headers and authentication are
  secrets, sealed at rest (``storage/codec.py``), and are never indexed; the signature is
  derived from the signing secret and not stored; the timestamp is the ``before``/``after``
  filter.

Payloads are stored as sent, not sealed (``SECRET_COLUMNS`` holds endpoint credentials
only), so the index holds nothing the payload column does not; an expunged or expired
payload leaves the index with it, and its message is no longer found by payload terms.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime

from hookline.domain.errors import InvalidRequest
from hookline.domain.models import MessageStatus

MAX_QUERY_LENGTH = 512
MAX_TERMS = 8
MAX_TERM_LENGTH = 200
MAX_PATH_DEPTH = 16
INDEXED_CHARACTERS = 100_000
"""The payload's first characters that the word index holds (the migrations' cap): a word
further into a large payload is not found by a word or path term."""

_WORDY = re.compile(r"[^\W_]")
_SEGMENT = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_ID = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")
_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_MESSAGE_ID_HEADERS = frozenset({"webhook-id", "svix-id"})
_UNSTORED_HEADERS = {
    "webhook-signature": "the signature is derived from the endpoint's secret and not stored",
    "svix-signature": "the signature is derived from the endpoint's secret and not stored",
    "webhook-timestamp": "use the before and after filters for the time",
    "svix-timestamp": "use the before and after filters for the time",
}


class SearchError(InvalidRequest):
    """The search cannot be run as given."""

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg, loc=("query", name))


@dataclass(frozen=True, slots=True)
class PathMatch:
    path: tuple[str, ...]
    """Object keys, or array indexes written as digits."""
    value: str


@dataclass(frozen=True, slots=True)
class Terms:
    """What ``q`` asks of a delivery's message."""

    words: tuple[str, ...] = ()
    """Words and phrases, lower-cased, the payload text must hold."""
    paths: tuple[PathMatch, ...] = ()
    message_id: str | None = None
    trace_id: str | None = None

    @property
    def phrases(self) -> tuple[str, ...]:
        """Every run of words the payload must hold, for the word index: the words, and
        the values the paths name (a value is in the payload text wherever it is)."""
        return self.words + tuple(p.value for p in self.paths if _WORDY.search(p.value))


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a page starts: below this (message, endpoint) pair, newest first."""

    msg_id: str
    endpoint_id: str

    def text(self) -> str:
        return f"{self.msg_id}.{self.endpoint_id}"


@dataclass(frozen=True, slots=True)
class DeliverySearch:
    """A search the store runs: the application and endpoint already resolved to ids."""

    app_id: str | None = None
    endpoint_id: str | None = None
    event_types: tuple[str, ...] | None = None
    status: MessageStatus | None = None
    status_code: int | None = None
    """An attempt of the delivery got this HTTP status (0: no answer)."""
    status_code_class: int | None = None
    """An attempt got a status of this class (0, 100, …, 500)."""
    before: datetime | None = None
    after: datetime | None = None
    terms: Terms = Terms()
    limit: int = 50
    cursor: Cursor | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """One delivery found: its state and the few facts of its message a list shows."""

    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    event_type: str
    status: MessageStatus
    attempt_count: int
    next_attempt_at: datetime | None
    updated_at: datetime
    timestamp: datetime
    """When its message was created."""
    last_status_code: int | None
    """The HTTP status of its latest attempt; None before the first."""

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.msg_id, self.endpoint_id)


def parse_cursor(text: str | None) -> Cursor | None:
    """A cursor from its wire form (``<msg id>.<endpoint id>``, as ``Cursor.text`` writes
    it); anything else is refused rather than read as the start."""
    if text is None:
        return None
    msg_id, dot, endpoint_id = text.partition(".")
    if not dot or not _ID.match(msg_id) or not _ID.match(endpoint_id):
        raise SearchError("iterator", "must be an iterator this list returned")
    return Cursor(msg_id, endpoint_id)


def check_status_code(code: int | None) -> int | None:
    if code is not None and not 0 <= code <= 599:
        raise SearchError("status_code", "must be an HTTP status between 100 and 599, or 0")
    return code


def parse_terms(q: str | None) -> Terms:
    """The terms of a search string; a clear ``SearchError`` for anything it cannot run."""
    if q is None or not q.strip():
        return Terms()
    if len(q) > MAX_QUERY_LENGTH:
        raise SearchError("q", f"must be at most {MAX_QUERY_LENGTH} characters")
    try:
        parts = shlex.split(q)
    except ValueError:
        raise SearchError("q", "has a quote that is not closed") from None
    if len(parts) > MAX_TERMS:
        raise SearchError("q", f"may hold at most {MAX_TERMS} terms")
    words: list[str] = []
    paths: list[PathMatch] = []
    message_id: str | None = None
    trace_id: str | None = None
    for part in parts:
        if len(part) > MAX_TERM_LENGTH:
            raise SearchError("q", f"each term must be at most {MAX_TERM_LENGTH} characters")
        key, equals, value = part.partition("=")
        if not equals:
            words.append(_word(part))
        elif key.lower().startswith("header."):
            name = key[len("header.") :].lower()
            if name in _MESSAGE_ID_HEADERS:
                message_id = _message_id(name, value)
            else:
                trace_id = _trace_id(name, value)
        else:
            paths.append(PathMatch(_path(key), _value(value)))
    return Terms(tuple(words), tuple(paths), message_id, trace_id)


def _word(text: str) -> str:
    if not _WORDY.search(text):
        raise SearchError("q", f"the term {text!r} holds no letter or digit to search for")
    return text.lower()


def _path(key: str) -> tuple[str, ...]:
    segments = tuple(key.split("."))
    if len(segments) > MAX_PATH_DEPTH or not all(_SEGMENT.match(s) for s in segments):
        raise SearchError(
            "q",
            f"{key!r} is not a payload path: dot-separated keys of A-Z, a-z, 0-9, '_' and "
            f"'-', at most {MAX_PATH_DEPTH} deep",
        )
    return segments


def _value(value: str) -> str:
    if not value:
        raise SearchError("q", "a path=value term needs a value after '='")
    return value


def _message_id(name: str, value: str) -> str:
    if not value.startswith("msg_") or not _ID.match(value):
        raise SearchError("q", f"header.{name} must be a message id (msg_…)")
    return value


def _trace_id(name: str, value: str) -> str:
    """The trace id of a traceparent term; any other header is refused, saying why."""
    if name == "traceparent":
        lowered = value.lower()
        whole = _TRACEPARENT.match(lowered)
        if whole:
            return whole.group(1)
        if _TRACE_ID.match(lowered):
            return lowered
        raise SearchError("q", "header.traceparent must be a trace id (32 hex) or a traceparent")
    reason = _UNSTORED_HEADERS.get(
        name,
        "an endpoint's custom headers are secrets, sealed at rest, and never indexed; "
        "searchable headers are webhook-id and traceparent",
    )
    raise SearchError("q", f"header.{name} cannot be searched: {reason}")
