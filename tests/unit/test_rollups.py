"""The rollup rules (``domain/rollups.py``): one row per endpoint and period per batch,
outcome classes, duration buckets, percentiles of summed rows, and the window a query
reads; and the event-type usage rule of Svix's aggregate task (``domain/usage.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain.models import Attempt, AttemptTrigger, MessageStatus
from hookline.domain.rollups import (
    COUNT_COLUMNS,
    HOUR_SECONDS,
    LATENCY_COLUMNS,
    LATENCY_EDGES_MS,
    MINUTE_ROLLUP_HOURS,
    MINUTE_SECONDS,
    Rollup,
    RollupBatch,
    latency_bucket,
    minute_cutoff,
    outcome_class,
    summarize,
    window,
)
from hookline.domain.usage import event_type_usage

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def _attempt(
    endpoint_id: str, at: datetime, code: int = 200, ms: int = 5, why: str = ""
) -> Attempt:
    return Attempt(
        id="atmpt_x",
        app_id="app_x",
        msg_id="msg_x",
        endpoint_id=endpoint_id,
        url="https://example.com",
        status=MessageStatus.SUCCESS if code == 200 else MessageStatus.FAIL,
        response_status_code=code,
        response=why,
        response_duration_ms=ms,
        trigger=AttemptTrigger.SCHEDULED,
        timestamp=at,
    )


def test_a_batch_writes_one_row_per_endpoint_and_period_however_many_attempts() -> None:
    """A thousand attempts of two endpoints in one minute make four rows: a minute and an
    hour for each endpoint."""
    batch = RollupBatch()
    for i in range(1000):
        batch.add(_attempt(f"ep_{i % 2}", T0 + timedelta(milliseconds=i)), 10)
    found = batch.rows()
    assert len(found) == 4
    assert {(r["endpoint_id"], r["period"]) for r in found} == {
        (ep, p) for ep in ("ep_0", "ep_1") for p in (MINUTE_SECONDS, HOUR_SECONDS)
    }
    assert all(r["attempts"] == 500 and r["payload_bytes"] == 5000 for r in found)
    assert all(r["start_at"] == int(T0.timestamp() * 1000) for r in found)


def test_rows_start_at_the_start_of_their_minute_and_hour() -> None:
    """An attempt at 10:59:59.999 belongs to the 10:59 minute and the 10:00 hour."""
    batch = RollupBatch()
    batch.add(_attempt("ep", T0 + timedelta(minutes=59, seconds=59, milliseconds=999)), None)
    starts = {r["period"]: r["start_at"] for r in batch.rows()}
    assert starts[MINUTE_SECONDS] == int((T0 + timedelta(minutes=59)).timestamp() * 1000)
    assert starts[HOUR_SECONDS] == int(T0.timestamp() * 1000)


@pytest.mark.parametrize(
    ("code", "why", "outcome"),
    [
        (200, "", "2xx"),
        (302, "", "3xx"),
        (404, "", "4xx"),
        (503, "", "5xx"),
        (101, "", "other"),
        (0, "timeout after 15 s", "timeout"),
        (0, "DNS lookup failed", "dns"),
        (0, "TLS handshake failed", "tls"),
        (0, "connection refused", "connection"),
        (0, "blocked by the SSRF guard", "ssrf_blocked"),
        (0, "payload expunged", "other"),
    ],
)
def test_outcome_classes_are_the_metrics_classes(code: int, why: str, outcome: str) -> None:
    """An attempt's class is its status class, or with no answer the transport's reason."""
    assert outcome_class(code, why or None) == outcome


def test_duration_buckets_include_their_upper_edge() -> None:
    """A duration on an edge falls in that edge's bucket; past the last, in the open one."""
    assert latency_bucket(0) == 0
    assert latency_bucket(LATENCY_EDGES_MS[0]) == 0
    assert latency_bucket(LATENCY_EDGES_MS[0] + 1) == 1
    assert latency_bucket(10**9) == len(LATENCY_EDGES_MS)
    assert len(LATENCY_COLUMNS) == len(LATENCY_EDGES_MS) + 1


def test_percentiles_of_summed_rows_come_from_the_merged_buckets() -> None:
    """Rows add column by column, and a percentile is the upper edge of the bucket holding
    it, so two rows' p50 is read from their summed buckets."""
    fast = RollupBatch()
    for _ in range(90):
        fast.add(_attempt("ep", T0, ms=8), None)
    slow = RollupBatch()
    for _ in range(10):
        slow.add(_attempt("ep", T0 + timedelta(hours=1), code=500, ms=3000), None)
    rows = [
        Rollup(T0, HOUR_SECONDS, tuple(int(r[c]) for c in COUNT_COLUMNS))
        for batch in (fast, slow)
        for r in batch.rows()
        if r["period"] == HOUR_SECONDS
    ]
    total = summarize(rows)
    assert (total.attempts, total.succeeded, total.failed) == (100, 90, 10)
    assert total.latency_percentile_ms(0.5) == 10
    assert total.latency_percentile_ms(0.95) == 5000
    assert summarize([]).latency_percentile_ms(0.5) is None


def test_a_recent_window_reads_minutes_rounded_outwards() -> None:
    """A window inside the minutes still kept reads minute rows, widened to whole minutes."""
    now = T0 + timedelta(hours=5)
    since = T0 + timedelta(minutes=3, seconds=20)
    until = T0 + timedelta(minutes=9, seconds=1)
    chosen = window(since, until, now, minute_hours=48)
    assert chosen.period_seconds == MINUTE_SECONDS
    assert (chosen.start, chosen.end) == (T0 + timedelta(minutes=3), T0 + timedelta(minutes=10))


def test_an_older_or_open_window_reads_hours_rounded_outwards() -> None:
    """A window reaching past the minutes kept, or with no start, reads hour rows."""
    now = T0 + timedelta(days=30)
    since = T0 + timedelta(minutes=30)
    chosen = window(since, now, now, minute_hours=48)
    assert chosen.period_seconds == HOUR_SECONDS
    assert chosen.start == T0
    assert window(None, None, now, minute_hours=48) == type(chosen)(HOUR_SECONDS, None, None)


def test_minute_rollups_go_after_two_days_or_with_a_shorter_retention() -> None:
    """Minute rows are kept ``MINUTE_ROLLUP_HOURS``, or as long as the retention if shorter."""
    now = T0
    assert minute_cutoff(now, timedelta(days=90)) == now - timedelta(hours=MINUTE_ROLLUP_HOURS)
    assert minute_cutoff(now, timedelta(hours=6)) == now - timedelta(hours=6)


def test_event_type_usage_names_each_type_once_and_sees_a_catch_all() -> None:
    """An application's subscribed types are the union of its endpoints' filters, sorted;
    an endpoint without a filter makes it a catch-all."""
    assert event_type_usage("app_1", [("b", "a"), ("a",), None]) == {
        "appId": "app_1",
        "explicitlySubscribedEventTypes": ["a", "b"],
        "hasCatchAllEndpoint": True,
    }
    assert event_type_usage("app_1", [("a",), ()])["hasCatchAllEndpoint"] is True
    assert event_type_usage("app_1", [("a",)])["hasCatchAllEndpoint"] is False
