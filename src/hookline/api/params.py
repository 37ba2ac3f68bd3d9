"""Parsing of bodies and query strings into typed values, with FastAPI-style 422s."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError

from hookline.api.http import Request
from hookline.domain.errors import InvalidRequest
from hookline.domain.models import MessageStatus
from hookline.storage.base import DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT, ListQuery, MessageFilter

M = TypeVar("M", bound=BaseModel)

_DATETIME = TypeAdapter(datetime)


class QueryError(InvalidRequest):
    """A query parameter has a value hookline cannot use."""

    def __init__(self, name: str, msg: str) -> None:
        super().__init__(msg, loc=("query", name))


def body(model: type[M], request: Request, *, optional: bool = False) -> M:
    """Validate the JSON body; an absent body counts as ``{}`` where the body is optional."""
    raw = request.body
    if optional and not raw.strip():
        raw = b"{}"
    return model.model_validate_json(raw)


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
        return _DATETIME.validate_python(text)
    except ValidationError:
        raise QueryError(name, "must be an ISO 8601 date-time") from None


def query_list(request: Request, name: str) -> tuple[str, ...] | None:
    """Svix SDKs send lists comma-joined; repeated parameters are accepted too."""
    values = request.query.get(name) or request.query.get(f"{name}[]")
    if not values:
        return None
    items = tuple(v for raw in values for v in raw.split(",") if v)
    return items or None


def list_query(request: Request, default_descending: bool) -> ListQuery:
    order = request.query_one("order")
    if order not in (None, "", "ascending", "descending"):
        raise QueryError("order", "must be 'ascending' or 'descending'")
    descending = default_descending if not order else order == "descending"
    return ListQuery(
        limit=query_int(request, "limit", DEFAULT_LIST_LIMIT, 1, MAX_LIST_LIMIT),
        iterator=request.query_one("iterator") or None,
        descending=descending,
    )


def message_filter(request: Request) -> MessageFilter:
    return MessageFilter(
        event_types=query_list(request, "event_types"),
        channel=request.query_one("channel") or None,
        tag=request.query_one("tag") or None,
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
