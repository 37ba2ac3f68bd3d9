"""The storage contract for attempt rollups, on every backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: recording
attempts adds them to their endpoint's minute and hour rows in the same call, rows from
several calls add up, reads take one period and a range, and retention prunes each period
before its own horizon.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hookline.delivery.retention import prune
from hookline.domain.models import ClaimedDelivery
from hookline.domain.rollups import HOUR_SECONDS, MINUTE_SECONDS, summarize
from hookline.storage.base import Store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow


async def _claimed(store: Store, n: int, payload: bytes = b'{"a":1}') -> list[ClaimedDelivery]:
    """``n`` deliveries of one endpoint, claimed."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    await store.publish([make_message(app, payload=payload) for _ in range(n)], now)
    return await store.claim_due(n, now, now + timedelta(seconds=30), "w1")


HOUR = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


async def test_recording_attempts_adds_them_to_their_minute_and_hour_rollups(
    store: Store,
) -> None:
    """One ``complete`` writes the attempts and their rollups: a row per minute they fall in
    and one for their hour, with outcomes by class, duration buckets and payload bytes."""
    claimed = await _claimed(store, 3)
    ep_id = claimed[0].endpoint.id
    outcomes = [
        recorded_outcome(claimed[0], 200, HOUR + timedelta(minutes=1, seconds=5), duration_ms=20),
        recorded_outcome(claimed[1], 503, HOUR + timedelta(minutes=1, seconds=50), duration_ms=700),
        recorded_outcome(claimed[2], 0, HOUR + timedelta(minutes=7), 15000, "timeout after 15 s"),
    ]
    await store.complete(outcomes)
    minutes = await store.endpoint_rollups(ep_id, MINUTE_SECONDS)
    assert [r.start for r in minutes] == [HOUR + timedelta(minutes=1), HOUR + timedelta(minutes=7)]
    assert [r.count("attempts") for r in minutes] == [2, 1]
    hours = await store.endpoint_rollups(ep_id, HOUR_SECONDS)
    assert [r.start for r in hours] == [HOUR]
    hour = summarize(hours)
    assert (hour.attempts, hour.succeeded, hour.failed) == (3, 1, 2)
    assert hour.by_outcome()["5xx"] == 1
    assert hour.by_outcome()["timeout"] == 1
    assert hour.count("duration_ms") == 20 + 700 + 15000
    assert hour.count("payloads") == 3
    assert hour.count("payload_bytes") == 3 * len(b'{"a":1}')
    assert hour.latency_percentile_ms(0.3) == 25


async def test_rollups_of_separate_batches_add_up(store: Store) -> None:
    """A second batch into the same minute adds to its row instead of replacing it."""
    claimed = await _claimed(store, 4)
    at = HOUR + timedelta(minutes=2)
    await store.complete([recorded_outcome(c, 200, at) for c in claimed[:2]])
    await store.complete([recorded_outcome(c, 500, at + timedelta(seconds=1)) for c in claimed[2:]])
    minutes = await store.endpoint_rollups(claimed[0].endpoint.id, MINUTE_SECONDS)
    assert len(minutes) == 1
    total = summarize(minutes)
    assert (total.attempts, total.succeeded, total.by_outcome()["5xx"]) == (4, 2, 2)


async def test_rollups_are_read_by_range_and_endpoint(store: Store) -> None:
    """A read takes the rows of one endpoint that start in [start, end), oldest first."""
    claimed = await _claimed(store, 3)
    other = await _claimed(store, 1)
    await store.complete(
        [recorded_outcome(c, 200, HOUR + timedelta(hours=i)) for i, c in enumerate(claimed)]
    )
    await store.complete([recorded_outcome(other[0], 200, HOUR)])
    ep_id = claimed[0].endpoint.id
    found = await store.endpoint_rollups(
        ep_id, HOUR_SECONDS, HOUR + timedelta(hours=1), HOUR + timedelta(hours=2)
    )
    assert [r.start for r in found] == [HOUR + timedelta(hours=1)]
    everything = await store.endpoint_rollups(ep_id, HOUR_SECONDS, HOUR, None)
    assert [r.start for r in everything] == [HOUR + timedelta(hours=i) for i in range(3)]


async def test_summed_rollups_equal_the_rows_added_up(store: Store) -> None:
    """``sum_rollups`` adds up in the database exactly the rows ``endpoint_rollups`` reads,
    and a window with no rows sums to zeros."""
    claimed = await _claimed(store, 4)
    codes = (200, 503, 404, 200)
    await store.complete(
        [
            recorded_outcome(c, code, HOUR + timedelta(minutes=20 * i), duration_ms=40 * i)
            for i, (c, code) in enumerate(zip(claimed, codes, strict=True))
        ]
    )
    ep_id = claimed[0].endpoint.id
    for period in (MINUTE_SECONDS, HOUR_SECONDS):
        start, end = HOUR + timedelta(minutes=10), HOUR + timedelta(hours=2)
        rows = await store.endpoint_rollups(ep_id, period, start, end)
        assert await store.sum_rollups(ep_id, period, start, end) == summarize(rows)
    empty = await store.sum_rollups(ep_id, HOUR_SECONDS, HOUR - timedelta(days=1), HOUR)
    assert empty.attempts == 0 and empty.latency_percentile_ms(0.5) is None


async def test_an_expunged_payload_counts_the_attempt_but_no_bytes(store: Store) -> None:
    """An attempt whose payload is gone adds to the attempts, not to the payload figures."""
    claimed = await _claimed(store, 1)
    gone = dataclasses.replace(claimed[0].message, payload=None)
    await store.complete(
        [recorded_outcome(dataclasses.replace(claimed[0], message=gone), 200, HOUR)]
    )
    total = summarize(await store.endpoint_rollups(claimed[0].endpoint.id, HOUR_SECONDS))
    assert (total.attempts, total.count("payloads"), total.count("payload_bytes")) == (1, 0, 0)


async def test_rollups_are_pruned_per_period_before_the_horizon(store: Store) -> None:
    """Pruning one period removes its rows that started before the horizon, a batch at a
    time, and leaves the other period's rows; a dry run counts, at most the limit, without
    removing."""
    claimed = await _claimed(store, 3)
    ep_id = claimed[0].endpoint.id
    await store.complete(
        [recorded_outcome(c, 200, HOUR + timedelta(minutes=10 * i)) for i, c in enumerate(claimed)]
    )
    horizon = HOUR + timedelta(minutes=15)
    assert await store.prune_rollups(MINUTE_SECONDS, horizon, 100, dry_run=True) == 2
    assert await store.prune_rollups(MINUTE_SECONDS, horizon, 1, dry_run=True) == 1
    assert await store.prune_rollups(MINUTE_SECONDS, horizon, 1) == 1
    assert await store.prune_rollups(MINUTE_SECONDS, horizon, 100) == 1
    minutes = await store.endpoint_rollups(ep_id, MINUTE_SECONDS)
    assert [r.start for r in minutes] == [HOUR + timedelta(minutes=20)]
    assert len(await store.endpoint_rollups(ep_id, HOUR_SECONDS)) == 1


async def test_retention_prunes_minute_rollups_sooner_than_hour_rollups(store: Store) -> None:
    """A retention pass removes minute rows from the shorter horizon and hour rows from the
    retention horizon, and counts both in its report (a dry run counts, removes nothing)."""
    claimed = await _claimed(store, 2)
    ep_id = claimed[0].endpoint.id
    old, recent = HOUR - timedelta(days=10), HOUR
    await store.complete(
        [recorded_outcome(claimed[0], 200, old), recorded_outcome(claimed[1], 200, recent)]
    )
    before, minutes_before = HOUR - timedelta(days=5), HOUR - timedelta(hours=1)
    dry = await prune(store, before, dry_run=True, minutes_before=minutes_before)
    assert dry.rollups == 2
    assert len(await store.endpoint_rollups(ep_id, MINUTE_SECONDS)) == 2
    report = await prune(store, before, minutes_before=minutes_before)
    assert report.rollups == 2  # the old minute and the old hour
    assert [r.start for r in await store.endpoint_rollups(ep_id, MINUTE_SECONDS)] == [recent]
    assert [r.start for r in await store.endpoint_rollups(ep_id, HOUR_SECONDS)] == [recent]
    assert (await prune(store, before + timedelta(days=10))).rollups == 2
