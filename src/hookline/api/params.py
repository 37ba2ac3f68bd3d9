"""Parsing of bodies and query strings into typed values, with FastAPI-style 422s."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from hookline.api.http import Request
from hookline.domain import validation as v
from hookline.domain.errors import InvalidRequest
from hookline.domain.models import MessageStatus
from hookline.storage.base import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ListQuery, MessageFilter

M = TypeVar("M", bound=BaseModel)

_DATETIME = TypeAdapter(datetime)
_KEY = re.compile(v.KEY_PATTERN)
_ITERATOR = re.compile(r"^-?[a-zA-Z0-9\-_.]+$")
MAX_IDEMPOTENCY_KEY_LENGTH = 256
_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
CHANNEL_PATTERN = r"^[a-zA-Z0-9\-_.:]+$"
_CHANNEL = re.compile(CHANNEL_PATTERN)


class QueryError(InvalidRequest):
    """A query parameter has a value hookline cannot use."""

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg, loc=("query", name))


def body(model: type[M], request: Request, *, optional: bool | None = None) -> M:
    """Validate the JSON body; an absent body counts as ``{}`` where the body is optional
    (by default, where the model says so: ``Wire.empty_body_allowed``)."""
    raw = request.body
    if optional is None:
        optional = bool(getattr(model, "empty_body_allowed", False))
    if optional and not raw.strip():
        raw = b"{}"
    # Strict: a boolean is true or false and an integer a JSON integer, as the document
    # says, never ``0``, ``"yes"`` or ``"12"`` coerced (date-times still come as strings).
    return model.model_validate_json(raw, strict=True)


def query_int(request: Request, name: str, default: int, low: int, high: int) -> int:
    text = request.query_one(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise QueryError(name, "must be an integer") from None
    if not low <= value <= high:
        raise QueryError(name, f"must be between {low} and {high}")
    return value


def query_bool(request: Request, name: str, default: bool = False) -> bool:
    text = request.query_one(name)
    if text is None or text == "":
        return default
    if text.lower() in {"true", "1"}:
        return True
    if text.lower() in {"false", "0"}:
        return False
    raise QueryError(name, "must be true or false")


def query_datetime(request: Request, name: str) -> datetime | None:
    text = request.query_one(name)
    if not text:
        return None
    try:
        parsed = _DATETIME.validate_python(v.check_time_text(text, name))
    except (ValidationError, v.InvalidValue):
        raise QueryError(name, "must be an ISO 8601 date-time") from None
    try:
        return v.check_time(parsed, name)
    except v.InvalidValue as exc:
        raise QueryError(name, str(exc)) from None


def check_path(params: Mapping[str, str]) -> None:
    """Every path segment names an object by id, uid or name: Svix's key pattern, at most
    256 characters. Anything else names nothing, and on an upsert would become a uid."""
    for name, value in params.items():
        if len(value) > v.MAX_KEY_LENGTH or not _KEY.match(value):
            raise InvalidRequest(
                f"{name} must be 1 to {v.MAX_KEY_LENGTH} characters of a-z, A-Z, 0-9, "
                "'-', '_', '.'",
                loc=("path", name),
            )


def check_query(query: Mapping[str, list[str]]) -> None:
    """No query value may hold a control character: none names anything, and PostgreSQL
    cannot even compare text with a NUL in it. Nor may one be empty: ``?tag=`` taken as no
    filter would answer everything to a caller who asked for a filter."""
    for name, values in query.items():
        for value in values:
            if value == "":
                raise QueryError(name, "must not be empty; leave the parameter out instead")
            if any(unicodedata.category(c) == "Cc" for c in value):
                raise QueryError(name, "must not contain control characters")


def check_idempotency_key(key: str) -> None:
    if len(key) > MAX_IDEMPOTENCY_KEY_LENGTH or not _VISIBLE_ASCII.match(key):
        raise InvalidRequest(
            f"idempotency-key must be 1 to {MAX_IDEMPOTENCY_KEY_LENGTH} visible ASCII characters",
            loc=("header", "idempotency-key"),
        )


def query_matching(
    request: Request, name: str, pattern: re.Pattern[str], max_length: int = v.MAX_KEY_LENGTH
) -> str | None:
    """A query parameter that names something (a channel, a tag, an endpoint), checked
    against the pattern that thing's names follow."""
    text = request.query_one(name)
    if not text:
        return None
    if len(text) > max_length or not pattern.match(text):
        raise QueryError(name, f"must match {pattern.pattern} (at most {max_length} characters)")
    return text


def query_list(request: Request, name: str) -> tuple[str, ...] | None:
    """Svix SDKs send lists comma-joined; repeated parameters are accepted too."""
    values = request.query.get(name) or request.query.get(f"{name}[]")
    if not values:
        return None
    items = tuple(item for raw in values for item in raw.split(",") if item)
    return items or None


def query_key(request: Request, name: str) -> str | None:
    """A query parameter naming an object by id or uid."""
    return query_matching(request, name, _KEY)


def query_keys(request: Request, name: str) -> tuple[str, ...] | None:
    """A list of event type names (or other keys), each checked against the key pattern."""
    items = query_list(request, name)
    for item in items or ():
        if len(item) > v.MAX_KEY_LENGTH or not _KEY.match(item):
            raise QueryError(name, f"each item must match {v.KEY_PATTERN}")
    return items


def list_query(request: Request, default_descending: bool) -> ListQuery:
    order = request.query_one("order")
    if order not in (None, "", "ascending", "descending"):
        raise QueryError("order", "must be 'ascending' or 'descending'")
    descending = default_descending if not order else order == "descending"
    return ListQuery(
        limit=query_int(request, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT),
        iterator=query_matching(request, "iterator", _ITERATOR),
        descending=descending,
    )


def message_filter(request: Request) -> MessageFilter:
    return MessageFilter(
        event_types=query_keys(request, "event_types"),
        channel=query_matching(request, "channel", _CHANNEL, 128),
        tag=query_matching(request, "tag", re.compile(v.TAG_PATTERN), v.MAX_TAG_LENGTH),
        before=query_datetime(request, "before"),
        after=query_datetime(request, "after"),
    )


def query_status(request: Request, name: str = "status") -> MessageStatus | None:
    """A delivery or attempt status by its Svix number (0 success … 4 canceled)."""
    text = request.query_one(name)
    if text is None or text == "":
        return None
    if text not in {str(int(status)) for status in MessageStatus}:
        raise QueryError(name, "must be 0 (success), 1 (pending), 2 (fail), 3 (sending) or 4")
    return MessageStatus(int(text))


def expanded_statuses(request: Request) -> None:
    """Validate Svix's ``expanded_statuses``: it asks for Canceled (4) attempts to be shown,
    and hookline never cancels an attempt, so a valid value changes nothing."""
    query_bool(request, "expanded_statuses")
