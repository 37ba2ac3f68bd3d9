"""The input rules of ``domain/validation.py`` applied by the operations, whatever the face.

A broken rule becomes ``InvalidRequest`` located at the field (``("body", "name")``) or the
path segment (``("path", "app_id")``) it came from, which the API answers 422.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

from hookline.domain import validation as v
from hookline.domain.errors import InvalidRequest

T = TypeVar("T")
Loc = tuple[str | int, ...]


def valid(loc: Loc, check: Callable[[T], T], value: T) -> T:
    """``check(value)``, its ``InvalidValue`` raised as an ``InvalidRequest`` at ``loc``."""
    try:
        return check(value)
    except v.InvalidValue as exc:
        raise InvalidRequest(str(exc), loc=loc) from None


def key(loc: Loc, value: str, what: str = "uid") -> str:
    return valid(loc, lambda k: v.check_key(k, what), value)


def optional_key(loc: Loc, value: str | None, what: str = "uid") -> str | None:
    return None if value is None else key(loc, value, what)


def keys(loc: Loc, values: Sequence[str] | None, what: str) -> None:
    for value in values or ():
        key(loc, value, what)


def time(loc: Loc, value: datetime | None) -> datetime | None:
    """A date-time in UTC (naive ones read as UTC), or None."""
    if value is None:
        return None
    return valid(loc, lambda t: v.check_time(t, loc[-1] if isinstance(loc[-1], str) else ""), value)


def in_order(place: str, since: datetime, until: datetime) -> None:
    """A time window must end after it starts (``place``: ``query`` or ``body``)."""
    if since >= until:
        raise InvalidRequest("'since' must be earlier than 'until'", loc=(place, "since"))


def window(
    place: str, since: datetime | None, until: datetime | None
) -> tuple[datetime | None, datetime | None]:
    """``since`` and ``until`` checked as times and, when both are given, in order."""
    since, until = time((place, "since"), since), time((place, "until"), until)
    if since is not None and until is not None:
        in_order(place, since, until)
    return since, until
