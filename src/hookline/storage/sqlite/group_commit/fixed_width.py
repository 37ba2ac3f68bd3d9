"""Rows of a SQLite group commit as fixed-width strings, cut apart by position in SQL.

The group commit hands SQLite one JSON document (``statement.sql``). Reading one element of
a JSON array there costs about half a microsecond, once per field of every row; a string
element arrives from ``json_each`` whole, and ``substr`` cuts a field out of it for a
fraction of that. So the rows written most (deliveries, attempt records and the deliveries
those attempts finish) are strings whose fields have fixed widths: the widths of what
hookline mints (ids are a prefix, ``_`` and 27 characters; times are 13 digits of
milliseconds), numbers padded with zeros, and at most one field of another width, last.
Free text (URLs, response bodies) goes into a BLOB beside the document, and a row holds its
offset and length. A value that does not fit is refused here, since it would shift every
field after it. ``layout.py`` declares every field; the encoders below take their widths
and templates from it, and the statement's positions are rendered from it. (Message rows
stay JSON: as fixed-width strings they measured within the noise.)
"""

from __future__ import annotations

from typing import Any

from hookline.domain.models import Attempt
from hookline.storage.base import AttemptOutcome
from hookline.storage.rows import dt_to_ms
from hookline.storage.sqlite.group_commit.layout import (
    ATTEMPT,
    ATTEMPT_ID,
    COUNT,
    DELIVERY,
    ENDPOINT_ID,
    FINISHED,
    ID,
    ORDERED,
    SCHEDULED,
    TIME,
)

_TIMES = range(10 ** (TIME - 1), 10**TIME)
_COUNTS = range(10**COUNT)
_CODES = range(10 ** ATTEMPT.field("response_status_code").width)
_TEXT_REF = f"%0{COUNT}d%0{COUNT}d"
_ATTEMPT = ATTEMPT.template
_FINISHED = FINISHED.template
_DUE = SCHEDULED.field("due").template()


def _refuse(row: str) -> ValueError:
    return ValueError(f"a value does not fit the fixed widths of a group-commit {row} row")


class Texts:
    """Free text of the rows, concatenated into one BLOB that the rows point into; a text
    that recurs (an endpoint's URL, a receiver's usual answer) is stored once."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._at = 1  # substr() counts from 1
        self._known: dict[str, str] = {}

    def add(self, text: str) -> str:
        """The offset and length of ``text`` in the BLOB (a ``TEXT_REF`` field)."""
        known = self._known.get(text)
        if known is not None:
            return known
        data = text.encode()
        at = self._at
        self._parts.append(data)
        self._at += len(data)
        if self._at not in _COUNTS:
            raise _refuse("text")
        known = self._known[text] = _TEXT_REF % (at, len(data))
        return known

    def blob(self) -> bytes:
        return b"".join(self._parts)


def delivery(params: dict[str, Any]) -> str:
    """A ``DELIVERY`` row; concatenated, which is quicker than its template of ``%s``."""
    delivery_id: str = params["id"]
    app_id: str = params["app_id"]
    msg_id: str = params["msg_id"]
    endpoint_id: str = params["endpoint_id"]
    if len(delivery_id) != ID or len(app_id) != ID or len(msg_id) != ID:
        raise _refuse(DELIVERY.name)
    return delivery_id + app_id + msg_id + endpoint_id


def scheduled(params: dict[str, Any]) -> str:
    """A ``SCHEDULED`` row: a ``DELIVERY`` row after its due time."""
    due: int = params["due"]
    if due not in _TIMES:
        raise _refuse(SCHEDULED.name)
    return _DUE % due + delivery(params)


def ordered(params: dict[str, Any]) -> str:
    """An ``ORDERED`` row: its due time, a delivery row and its sequence's ordering key."""
    key: str = params["ordering_key"]
    due: int = params.get("due", params["now"])
    if len(params["endpoint_id"]) != ENDPOINT_ID or due not in _TIMES:
        raise _refuse(ORDERED.name)
    return _DUE % due + delivery(params) + key


def attempt(record: Attempt, texts: Texts) -> str:
    """An ``ATTEMPT`` row."""
    created = dt_to_ms(record.timestamp)
    code = record.response_status_code
    duration = record.response_duration_ms
    if (
        len(record.id) != ATTEMPT_ID
        or len(record.app_id) != ID
        or len(record.msg_id) != ID
        or len(record.endpoint_id) != ENDPOINT_ID
        or code not in _CODES
        or duration not in _COUNTS
        or created not in _TIMES
    ):
        raise _refuse(ATTEMPT.name)
    return _ATTEMPT % (
        record.id,
        record.app_id,
        record.msg_id,
        record.endpoint_id,
        record.status,
        code,
        record.trigger,
        created,
        duration,
        texts.add(record.url),
        texts.add(record.response),
    )


def finished(outcome: AttemptOutcome) -> str:
    """A ``FINISHED`` row: the delivery an attempt moves."""
    claimed = outcome.claimed
    now = dt_to_ms(outcome.attempt.timestamp)
    next_at = outcome.next_attempt_at
    next_ms = 0 if next_at is None else dt_to_ms(next_at)
    count = outcome.scheduled_attempts
    if (
        len(claimed.delivery_id) != ID
        or count not in _COUNTS
        or now not in _TIMES
        or (next_at is not None and next_ms not in _TIMES)
    ):
        raise _refuse(FINISHED.name)
    return _FINISHED % (
        claimed.delivery_id,
        outcome.delivery_status,
        count,
        now,
        next_ms,
        claimed.lease_token,
    )
