"""The backlog's state and its drain forecast: when the due deliveries will be done at the
rate the backlog has been moving.

The forecast answers an operator's question, "do I need more workers?", so it is the net
rate that matters (deliveries done less deliveries falling due), which is the slope of the
due count over time. The slope is a Theil-Sen estimate (the median of the slopes between
every pair of samples), so one odd sample, a burst of publishes between two samples, does
not swing it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from statistics import median

FORECAST_WINDOW_SECONDS = 300.0
"""The samples the slope is taken over: long enough to smooth bursts, short enough to
follow a change of pace (workers added, an endpoint recovered)."""
MIN_FORECAST_SPAN_SECONDS = 30.0
"""Fewer seconds of samples than this give no forecast: too little to tell a trend."""
MIN_FORECAST_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class BacklogState:
    """The queue at one moment (``Store.backlog_sample``) with its drain forecast."""

    sampled_at: datetime
    due: int
    """Deliveries of enabled endpoints due and not being attempted."""
    oldest_due_at: datetime | None
    live_workers: int
    disabled_endpoints: int
    open_breakers: int
    drain_seconds: float | None
    """Seconds until ``due`` reaches 0 at the recent net rate: 0 when nothing is due,
    ``math.inf`` when the backlog is not shrinking, None before there are enough samples."""

    @property
    def oldest_due_age_seconds(self) -> float:
        """How long the longest-waiting due delivery had waited when sampled; 0 for none."""
        if self.oldest_due_at is None:
            return 0.0
        return max((self.sampled_at - self.oldest_due_at).total_seconds(), 0.0)


def drain_seconds(history: Sequence[tuple[float, int]]) -> float | None:
    """The forecast from ``history``, (unix time, due count) pairs, oldest first: seconds
    until the last count reaches 0 at the slope of the last ``FORECAST_WINDOW_SECONDS``."""
    if not history:
        return None
    last_at, last_due = history[-1]
    if last_due == 0:
        return 0.0
    recent = [(at, due) for at, due in history if at >= last_at - FORECAST_WINDOW_SECONDS]
    if len(recent) < MIN_FORECAST_SAMPLES or last_at - recent[0][0] < MIN_FORECAST_SPAN_SECONDS:
        return None
    slopes = [
        (later_due - due) / (later_at - at)
        for i, (at, due) in enumerate(recent)
        for later_at, later_due in recent[i + 1 :]
        if later_at > at
    ]
    slope = median(slopes)
    if slope >= 0:
        return math.inf
    return last_due / -slope


def describe_drain(state: BacklogState) -> str:
    """The forecast in words, for the API's answer and the logs."""
    if state.due == 0:
        return "nothing is due"
    seconds = state.drain_seconds
    if seconds is None:
        return f"{state.due} deliveries are due; too few samples yet to forecast the drain"
    if math.isinf(seconds):
        return (
            f"{state.due} deliveries are due and the backlog is not shrinking: "
            "add workers or look for slow endpoints"
        )
    minutes = seconds / 60
    when = f"{minutes:.0f} minutes" if minutes >= 1 else f"{seconds:.0f} seconds"
    return f"{state.due} deliveries are due; at the current rate the backlog clears in {when}"
