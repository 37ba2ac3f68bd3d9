"""The console overview's pure helpers: the chart's columns and the drain forecast's words."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from hookline.domain.rollups import COUNT_COLUMNS, MINUTE_SECONDS, Rollup, summarize
from hookline.operations.statistics import DeploymentWindow
from hookline.web.console.overview import chart_data, drain_text

START = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _row(minute: int, **counts: int) -> Rollup:
    values = [0] * len(COUNT_COLUMNS)
    for name, value in counts.items():
        values[COUNT_COLUMNS.index(name)] = value
    return Rollup(START + timedelta(minutes=minute), MINUTE_SECONDS, tuple(values))


def test_the_chart_spans_every_minute_of_the_window_with_zeros_where_nothing_happened() -> None:
    """60 minutes give 60 points; a row's outcomes land at its minute; what the chart does
    not name is counted as other."""
    rows = [_row(3, attempts=5, success=3, status_5xx=1, dns=1)]
    window = DeploymentWindow(START, START + timedelta(hours=1), rows, summarize(rows), [])
    data = chart_data(window)
    assert len(data["times"]) == 60 and data["times"][0] == int(START.timestamp())
    assert data["series"]["2xx"][3] == 3 and data["series"]["5xx"][3] == 1
    assert data["series"]["other"][3] == 1
    assert sum(data["series"]["2xx"]) == 3


def test_the_drain_forecast_reads_as_words() -> None:
    """None before enough samples, infinity when not shrinking, else a rounded duration."""
    assert drain_text(None) == "not enough samples yet"
    assert drain_text(math.inf) == "not draining"
    assert drain_text(0.0) == "drained"
    assert drain_text(45) == "about 45 s"
    assert drain_text(600) == "about 10 min"
    assert drain_text(3 * 3600) == "about 3.0 h"
