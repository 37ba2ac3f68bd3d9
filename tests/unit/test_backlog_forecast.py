"""The drain forecast (``domain/backlog.py``): seconds until the due backlog clears at the
slope of its recent samples, robust to one odd sample."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain.backlog import BacklogState, describe_drain, drain_seconds


def test_a_shrinking_backlog_clears_at_its_recent_rate() -> None:
    """1,000 due, falling 10 a second over the last minute: it clears in 100 s."""
    history = [(float(t), 1600 - 10 * t) for t in range(0, 61, 15)]
    assert drain_seconds(history) == pytest.approx(1000 / 10)


def test_one_burst_between_samples_does_not_swing_the_forecast() -> None:
    """A single sample far off the trend (a burst of publishes, drained by the next sample)
    leaves the median slope where the others put it."""
    history = [(float(t), 2000 - 5 * t) for t in range(0, 121, 15)]
    history[4] = (history[4][0], 9000)
    assert drain_seconds(history) == pytest.approx((2000 - 5 * 120) / 5)


@pytest.mark.parametrize(
    "history",
    [
        [(0.0, 100), (15.0, 100), (30.0, 100), (45.0, 100)],
        [(0.0, 100), (15.0, 150), (30.0, 200), (45.0, 250)],
    ],
    ids=["flat", "growing"],
)
def test_a_backlog_that_does_not_shrink_never_clears(history: list[tuple[float, int]]) -> None:
    """Flat or growing, the forecast is infinite: more workers are needed, not patience."""
    assert drain_seconds(history) == math.inf


def test_an_empty_backlog_is_cleared_now_whatever_came_before() -> None:
    assert drain_seconds([(0.0, 500), (15.0, 0)]) == 0.0


@pytest.mark.parametrize(
    "history",
    [[], [(0.0, 100), (15.0, 90)], [(0.0, 100), (10.0, 90), (20.0, 80)]],
    ids=["none", "two samples", "20 seconds"],
)
def test_too_little_history_gives_no_forecast(history: list[tuple[float, int]]) -> None:
    """Fewer than three samples, or less than 30 s of them, tell no trend."""
    assert drain_seconds(history) is None


def test_only_the_last_five_minutes_count() -> None:
    """A growing backlog ten minutes ago does not hide that it shrinks now."""
    old = [(float(t), 500 + t) for t in range(0, 301, 30)]
    recent = [(float(t), 1400 - (t - 600)) for t in range(600, 901, 30)]
    assert drain_seconds(old + recent) == pytest.approx(1100 / 1)


def state(due: int, drain: float | None) -> BacklogState:
    now = datetime.now(UTC)
    return BacklogState(now, due, now - timedelta(seconds=5), 1, 0, 0, drain)


@pytest.mark.parametrize(
    ("due", "drain", "words"),
    [
        (0, 0.0, "nothing is due"),
        (50, None, "50 deliveries are due; too few samples yet"),
        (50, math.inf, "not shrinking: add workers"),
        (50, 30.0, "clears in 30 seconds"),
        (5000, 1500.0, "clears in 25 minutes"),
    ],
)
def test_the_forecast_reads_as_a_sentence(due: int, drain: float | None, words: str) -> None:
    assert words in describe_drain(state(due, drain))
