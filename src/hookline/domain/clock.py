"""The wall clock, at the millisecond precision the stores keep.

Truncating here means an object reads back exactly as it was created, so an API
response and a later GET of the same object always agree.
"""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
