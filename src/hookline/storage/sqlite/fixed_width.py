"""Rows of a SQLite group commit as fixed-width strings, cut apart by position in SQL.

The group commit hands SQLite one JSON document (``create_group_commit`` in queries.sql).
Reading one element of a JSON array there costs about half a microsecond, once per field
of every row; a string element arrives from ``json_each`` whole, and ``substr`` cuts a
field out of it for a fraction of that. So the rows written most (deliveries, attempt
records and the deliveries those attempts finish) are strings whose fields have fixed
widths: the widths of what hookline mints (ids are a prefix, ``_`` and 27 characters;
times are 13 digits of milliseconds), numbers padded with zeros, and at most one field of
another width, last. Free text (URLs, response bodies) goes into a BLOB beside the
document, and a row holds its offset and length. A value that does not fit is refused
here, since it would shift every field after it. ``create_group_commit`` spells out each
layout; they must change together. (Message rows stay JSON: as fixed-width strings they
measured within the noise.)
"""

from __future__ import annotations

from typing import Any

from hookline.domain.models import Attempt
from hookline.storage.base import AttemptOutcome
from hookline.storage.rows import dt_to_ms

ID = 31
"""An application, message or delivery id: ``app_``, ``msg_`` or ``dlv_`` and 27."""
ENDPOINT_ID = 30
ATTEMPT_ID = 33
_TIMES = range(10**12, 10**13)
"""Times are 13 digits of milliseconds (2001 to 2286)."""
_COUNT = 10**10
"""Counts, durations and BLOB offsets are 10 digits."""
_DIGIT = "0123456789"
"""A status or trigger (small enumerations) as its one digit."""
_NO_TIME = "0" * 13


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
        """The offset and length of ``text`` in the BLOB, 10 digits each."""
        known = self._known.get(text)
        if known is not None:
            return known
        data = text.encode()
        at = self._at
        self._parts.append(data)
        self._at += len(data)
        if self._at >= _COUNT:
            raise _refuse("text")
        known = self._known[text] = f"{at:010d}{len(data):010d}"
        return known

    def blob(self) -> bytes:
        return b"".join(self._parts)


def delivery(params: dict[str, Any]) -> str:
    """id, app_id, msg_id (ID each), endpoint_id (the rest)."""
    delivery_id: str = params["id"]
    app_id: str = params["app_id"]
    msg_id: str = params["msg_id"]
    endpoint_id: str = params["endpoint_id"]
    if len(delivery_id) != ID or len(app_id) != ID or len(msg_id) != ID:
        raise _refuse("delivery")
    return delivery_id + app_id + msg_id + endpoint_id


def attempt(record: Attempt, texts: Texts) -> str:
    """id (ATTEMPT_ID), app_id, msg_id (ID each), endpoint_id (ENDPOINT_ID), status (1),
    response_status_code (3), trigger_type (1), created_at (13), duration_ms (10), url and
    response (offset and length in the BLOB, 10 digits each)."""
    created = dt_to_ms(record.timestamp)
    code = record.response_status_code
    duration = record.response_duration_ms
    if (
        len(record.id) != ATTEMPT_ID
        or len(record.app_id) != ID
        or len(record.msg_id) != ID
        or len(record.endpoint_id) != ENDPOINT_ID
        or not 0 <= code < 1000
        or not 0 <= duration < _COUNT
        or created not in _TIMES
    ):
        raise _refuse("attempt")
    url, response = texts.add(record.url), texts.add(record.response)
    return (
        f"{record.id}{record.app_id}{record.msg_id}{record.endpoint_id}{_DIGIT[record.status]}"
        f"{code:03d}{_DIGIT[record.trigger]}{created}{duration:010d}{url}{response}"
    )


def finished(outcome: AttemptOutcome) -> str:
    """The delivery an attempt moves: id (ID), status (1), attempt_count (10), now (13),
    next_attempt_at (13, zeros for none), lease_token (the rest)."""
    claimed = outcome.claimed
    now = dt_to_ms(outcome.attempt.timestamp)
    next_at = outcome.next_attempt_at
    next_ms = _NO_TIME if next_at is None else dt_to_ms(next_at)
    count = outcome.scheduled_attempts
    if (
        len(claimed.delivery_id) != ID
        or not 0 <= count < _COUNT
        or now not in _TIMES
        or (next_ms is not _NO_TIME and next_ms not in _TIMES)
    ):
        raise _refuse("finished delivery")
    return (
        f"{claimed.delivery_id}{_DIGIT[outcome.delivery_status]}{count:010d}{now}{next_ms}"
        f"{claimed.lease_token}"
    )
