"""The storage contract for the operator console, on every backend: the live tail's read of
attempts after a cursor, and the deployment-wide rollup reads of its overview.

Part of the store contract (``test_store_contract.py``), kept in its own file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hookline.domain import ids
from hookline.domain.models import ClaimedDelivery
from hookline.domain.rollups import HOUR_SECONDS, MINUTE_SECONDS
from hookline.storage.base import Store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow

HOUR = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


async def _claimed(store: Store, n: int) -> list[ClaimedDelivery]:
    """``n`` deliveries to one new endpoint of a new application, claimed."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    await store.publish([make_message(app) for _ in range(n)], now)
    return await store.claim_due(n, now, now + timedelta(seconds=30), "w1")


async def test_the_tail_reads_attempts_of_every_application_after_a_cursor_oldest_first(
    store: Store,
) -> None:
    """Attempts of two applications come back in id order after the cursor, at most the
    limit; the last id read as the next cursor gives the rest and then nothing."""
    start = ids.first_id_at(ids.ATTEMPT, int(utcnow().timestamp() * 1000) - 1000)
    first, second = await _claimed(store, 2), await _claimed(store, 1)
    outcomes = [recorded_outcome(c, 200, utcnow()) for c in [*first, *second]]
    await store.complete(outcomes)
    written = sorted(o.attempt.id for o in outcomes)
    page = await store.tail_attempts(start, 2)
    assert [a.id for a in page] == written[:2]
    rest = await store.tail_attempts(page[-1].id, 10)
    assert [a.id for a in rest] == written[2:]
    assert await store.tail_attempts(rest[-1].id, 10) == []
    assert {a.app_id for a in await store.tail_attempts(start, 10)} == {
        first[0].endpoint.app_id,
        second[0].endpoint.app_id,
    }


async def test_the_tail_can_keep_to_one_application(store: Store) -> None:
    """With an application id, only its attempts come back."""
    start = ids.first_id_at(ids.ATTEMPT, int(utcnow().timestamp() * 1000) - 1000)
    first, second = await _claimed(store, 1), await _claimed(store, 2)
    await store.complete([recorded_outcome(c, 500, utcnow()) for c in [*first, *second]])
    app_id = second[0].endpoint.app_id
    found = await store.tail_attempts(start, 10, app_id)
    assert len(found) == 2 and {a.app_id for a in found} == {app_id}
    assert {a.response_status_code for a in found} == {500}


async def test_the_rollup_series_adds_every_endpoint_up_per_row_start(store: Store) -> None:
    """Rows of two endpoints in the same minute are one point; the window is [start, end)."""
    first, second = await _claimed(store, 2), await _claimed(store, 1)
    at = HOUR + timedelta(minutes=3)
    await store.complete(
        [
            recorded_outcome(first[0], 200, at),
            recorded_outcome(first[1], 503, at + timedelta(minutes=1)),
            recorded_outcome(second[0], 0, at, 15000, "timeout after 15 s"),
        ]
    )
    series = await store.rollup_series(MINUTE_SECONDS, HOUR, HOUR + timedelta(hours=1))
    assert [p.start for p in series] == [at, at + timedelta(minutes=1)]
    assert [p.count("attempts") for p in series] == [2, 1]
    assert [p.count("success") for p in series] == [1, 0]
    assert series[0].count("timeout") == 1 and series[1].count("status_5xx") == 1
    assert await store.rollup_series(MINUTE_SECONDS, HOUR, at) == []
    hours = await store.rollup_series(HOUR_SECONDS, HOUR, HOUR + timedelta(hours=1))
    assert [p.count("attempts") for p in hours] == [3]


async def test_the_worst_endpoints_are_those_failing_most_with_enough_attempts(
    store: Store,
) -> None:
    """Ordered by failed attempts; an endpoint under the minimum volume or without a
    failure is left out; the limit holds."""
    bad, worse, quiet, healthy = (
        await _claimed(store, 3),
        await _claimed(store, 3),
        await _claimed(store, 1),
        await _claimed(store, 2),
    )
    at = HOUR + timedelta(minutes=5)
    outcomes = [
        recorded_outcome(bad[0], 500, at),
        recorded_outcome(bad[1], 200, at),
        recorded_outcome(bad[2], 200, at),
        *(recorded_outcome(c, 500, at) for c in worse),
        recorded_outcome(quiet[0], 500, at),
        *(recorded_outcome(c, 200, at) for c in healthy),
    ]
    await store.complete(outcomes)
    end = HOUR + timedelta(hours=1)
    found = await store.worst_endpoints(MINUTE_SECONDS, HOUR, end, 2, 10)
    assert [s.endpoint_id for s in found] == [worse[0].endpoint.id, bad[0].endpoint.id]
    assert [(s.attempts, s.failed) for s in found] == [(3, 3), (3, 1)]
    assert found[0].app_id == worse[0].endpoint.app_id
    assert round(found[1].success_percent) == 67
    assert len(await store.worst_endpoints(MINUTE_SECONDS, HOUR, end, 1, 2)) == 2
    assert await store.worst_endpoints(MINUTE_SECONDS, end, end + timedelta(hours=1), 1, 5) == []
