"""The wall clock at the stores' millisecond precision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hookline.domain.clock import utcnow


def test_utcnow_is_aware_utc_in_whole_milliseconds_and_current() -> None:
    """What the stores keep (whole milliseconds, UTC) is what utcnow hands out, so an object
    reads back exactly as it was created."""
    for _ in range(1000):
        before = datetime.now(UTC) - timedelta(milliseconds=1)
        now = utcnow()
        after = datetime.now(UTC)
        assert now.tzinfo is UTC
        assert now.microsecond % 1000 == 0
        assert before <= now <= after
