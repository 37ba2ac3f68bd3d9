"""The retention horizon: how it is written, and the message id that bounds a pass."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain import ids
from hookline.domain.retention import (
    DEFAULT_RETENTION,
    cutoff,
    first_message_id,
    format_retention,
    parse_retention,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45), ("2w", 1209600), ("30", 30)],
)
def test_a_horizon_is_a_number_with_a_unit_or_bare_seconds(text: str, seconds: int) -> None:
    """Days, hours, minutes, seconds and weeks are understood; a bare number is seconds."""
    assert parse_retention(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["0", "off", "OFF", " never ", "0d"])
def test_zero_or_off_disables_pruning(text: str) -> None:
    """``0`` and ``off`` (and a zero duration) mean keep everything."""
    assert parse_retention(text) is None


@pytest.mark.parametrize("text", ["", "ninety days", "-5d", "10y", "5 d x"])
def test_a_horizon_that_is_not_a_duration_is_refused(text: str) -> None:
    """Anything else is an error that shows the expected forms."""
    with pytest.raises(ValueError, match="90d"):
        parse_retention(text)


def test_the_default_is_ninety_days_as_svix() -> None:
    """Without a setting, rows are kept 90 days."""
    assert parse_retention(DEFAULT_RETENTION) == timedelta(days=90)


@pytest.mark.parametrize(
    ("horizon", "text"),
    [(timedelta(days=90), "90d"), (timedelta(hours=12), "12h"), (timedelta(seconds=45), "45s")],
)
def test_a_horizon_is_shown_as_it_would_be_written(horizon: timedelta, text: str) -> None:
    """Reports name the horizon in the largest whole unit; no horizon is ``off``."""
    assert format_retention(horizon) == text
    assert format_retention(None) == "off"


def test_the_first_id_at_a_time_sorts_between_ids_minted_before_and_after() -> None:
    """Every id minted before the horizon sorts below its first id, every later one above:
    pruning can walk the primary key."""
    before = ids.new_id(ids.MESSAGE)
    now = datetime.now(UTC) + timedelta(milliseconds=10)
    bound = first_message_id(now)
    assert before < bound < ids.first_id_at(ids.MESSAGE, int(now.timestamp() * 1000) + 8)
    assert bound.startswith("msg_") and len(bound) == len(before)


def test_the_cutoff_is_the_horizon_before_now() -> None:
    """Rows created before now minus the horizon have passed it."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert cutoff(now, timedelta(days=90)) == datetime(2026, 3, 3, tzinfo=UTC)
