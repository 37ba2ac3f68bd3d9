"""The storage contract for failure groups, on every backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: what a
grouping pass reads (``endpoints_with_failures`` from the minute rollups, ``failed_attempts``
from the attempt log), its cursor (``scan_cursor``, ``advance_scan_cursor``: compare-and-set),
and the groups it keeps: opened, added to, acknowledged, resolved (by hand, or on its own
only if no failure came since it was read), reopened with counters started again, listed by
id with filters, and pruned by retention once resolved before the horizon.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hookline.delivery.retention import prune
from hookline.domain.failure_groups import (
    FailureGroup,
    GroupFilter,
    GroupStatus,
    ResolvedBy,
    Sighting,
)
from hookline.domain.models import ClaimedDelivery
from hookline.storage.base import ListQuery, Store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ALL_IDS = ("atmpt_", "atmpt_~")
"""Attempt ids sort strictly between these two."""


async def _claimed(store: Store, n: int) -> list[ClaimedDelivery]:
    """``n`` deliveries of one new endpoint (in a new application), claimed."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    await store.publish([make_message(app) for _ in range(n)], now)
    return await store.claim_due(n, now, now + timedelta(seconds=30), "w1")


def _sighting(
    endpoint_id: str = "ep_a",
    code: int = 503,
    at: datetime = T0,
    attempts: int = 2,
    messages: int = 1,
    app_id: str = "app_a",
    sample: str = "busy",
) -> Sighting:
    outcome = "timeout" if code == 0 else f"{code // 100}xx"
    return Sighting(app_id, endpoint_id, outcome, code, attempts, messages, at, at, sample)


async def _only(store: Store) -> list[FailureGroup]:
    """Every group in the store."""
    return (await store.list_failure_groups(ListQuery(limit=250), GroupFilter())).data


async def test_endpoints_with_failures_are_those_whose_minute_rollups_count_a_failure(
    store: Store,
) -> None:
    """An endpoint with a failed attempt in a minute row starting in the range is listed
    once; one that only succeeded, or failed outside the range, is not."""
    a = await _claimed(store, 3)
    b = await _claimed(store, 1)
    c = await _claimed(store, 1)
    m2 = T0 + timedelta(minutes=2)
    await store.complete(
        [
            recorded_outcome(a[0], 200, T0 + timedelta(seconds=1)),
            recorded_outcome(a[1], 503, T0 + timedelta(seconds=2)),
            recorded_outcome(a[2], 0, T0 + timedelta(seconds=70), response="timeout"),
            recorded_outcome(b[0], 200, T0 + timedelta(seconds=3)),
            recorded_outcome(c[0], 500, m2 + timedelta(seconds=5)),
        ]
    )
    ep_a, ep_c = a[0].endpoint.id, c[0].endpoint.id
    assert await store.endpoints_with_failures(T0, m2) == [ep_a]
    wider = await store.endpoints_with_failures(T0, m2 + timedelta(minutes=1))
    assert sorted(wider) == sorted([ep_a, ep_c])
    assert (
        await store.endpoints_with_failures(T0 + timedelta(minutes=5), T0 + timedelta(hours=1))
        == []
    )


async def test_failed_attempts_are_one_endpoints_failures_in_an_id_range_by_id(
    store: Store,
) -> None:
    """Failures only (a success is left out), of the asked endpoint only, with ids strictly
    inside the range, in id order, at most ``limit``, decoded whole."""
    a = await _claimed(store, 4)
    other = await _claimed(store, 1)
    outcomes = [
        recorded_outcome(a[0], 503, T0, response="Service Unavailable"),
        recorded_outcome(a[1], 200, T0 + timedelta(seconds=1)),
        recorded_outcome(a[2], 0, T0 + timedelta(seconds=2), response="timeout after 15 s"),
        recorded_outcome(a[3], 404, T0 + timedelta(seconds=3), response="nope"),
        recorded_outcome(other[0], 500, T0),
    ]
    await store.complete(outcomes)
    ep = a[0].endpoint.id
    found = await store.failed_attempts(ep, *ALL_IDS, 10)
    assert [f.id for f in found] == [outcomes[i].attempt.id for i in (0, 2, 3)]
    first = found[0]
    assert (first.app_id, first.msg_id, first.endpoint_id) == (
        a[0].endpoint.app_id,
        a[0].message.id,
        ep,
    )
    assert (first.status_code, first.response, first.at) == (503, "Service Unavailable", T0)
    assert found[1].status_code == 0 and found[1].response == "timeout after 15 s"
    page = await store.failed_attempts(ep, *ALL_IDS, 2)
    assert [f.id for f in page] == [f.id for f in found[:2]]
    after = await store.failed_attempts(ep, page[-1].id, ALL_IDS[1], 2)
    assert [f.id for f in after] == [found[2].id]
    assert await store.failed_attempts(ep, found[0].id, found[2].id, 10) == [found[1]]


async def test_the_scan_cursor_moves_only_from_where_the_caller_read_it(store: Store) -> None:
    """Absent before the first pass; moved from absent once; then only from the value it
    holds, so of two passes that read one value only the first moves it."""
    t1, t2, t3 = T0, T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    assert await store.scan_cursor("job") is None
    assert await store.advance_scan_cursor("job", None, t1)
    assert not await store.advance_scan_cursor("job", None, t2)
    assert await store.scan_cursor("job") == t1
    assert await store.advance_scan_cursor("job", t1, t2)
    assert not await store.advance_scan_cursor("job", t1, t3)
    assert await store.scan_cursor("job") == t2
    assert await store.scan_cursor("other") is None


async def test_a_group_opens_adds_up_and_reopens_with_its_counters_started_again(
    store: Store,
) -> None:
    """A first sighting opens the group; the next adds to it (counts, last seen, sample),
    also once acknowledged; after a resolve a sighting reopens the same row: open again, not
    acknowledged, counters and ``opened_at`` from the new sighting, ``first_seen_at`` kept,
    ``reopened`` one more."""
    await store.add_failures([_sighting(attempts=2, messages=1, sample="first")])
    (opened,) = await _only(store)
    assert (opened.status, opened.attempts, opened.messages, opened.sample) == (
        GroupStatus.OPEN,
        2,
        1,
        "first",
    )
    assert (opened.first_seen_at, opened.opened_at, opened.last_seen_at) == (T0, T0, T0)
    assert (opened.outcome, opened.status_code, opened.reopened) == ("5xx", 503, 0)
    assert opened.resolved_at is None and opened.resolved_by is None

    t1 = T0 + timedelta(minutes=1)
    assert await store.acknowledge_failure_group(opened.id, t1)
    later = T0 + timedelta(minutes=2)
    await store.add_failures([_sighting(at=later, attempts=3, messages=2, sample="second")])
    added = await store.failure_group(opened.id)
    assert added is not None
    assert (added.status, added.attempts, added.messages, added.sample) == (
        GroupStatus.ACKNOWLEDGED,
        5,
        3,
        "second",
    )
    assert (added.acknowledged_at, added.last_seen_at, added.opened_at) == (t1, later, T0)

    t3 = T0 + timedelta(minutes=3)
    assert await store.resolve_failure_group(opened.id, t3, ResolvedBy.OPERATOR)
    resolved = await store.failure_group(opened.id)
    assert resolved is not None
    assert (resolved.status, resolved.resolved_at, resolved.resolved_by) == (
        GroupStatus.RESOLVED,
        t3,
        ResolvedBy.OPERATOR,
    )
    again = T0 + timedelta(minutes=10)
    await store.add_failures([_sighting(at=again, attempts=1, messages=1, sample="third")])
    (reopened,) = await _only(store)
    assert reopened.id == opened.id
    assert (reopened.status, reopened.attempts, reopened.messages, reopened.reopened) == (
        GroupStatus.OPEN,
        1,
        1,
        1,
    )
    assert (reopened.first_seen_at, reopened.opened_at, reopened.last_seen_at) == (
        T0,
        again,
        again,
    )
    assert reopened.acknowledged_at is None and reopened.resolved_at is None
    assert reopened.resolved_by is None


async def test_each_key_is_its_own_group(store: Store) -> None:
    """Another status code, another endpoint, or no answer: another group."""
    await store.add_failures(
        [_sighting(), _sighting(code=500), _sighting(endpoint_id="ep_b"), _sighting(code=0)]
    )
    keys = {(g.endpoint_id, g.outcome, g.status_code) for g in await _only(store)}
    assert keys == {
        ("ep_a", "5xx", 503),
        ("ep_a", "5xx", 500),
        ("ep_b", "5xx", 503),
        ("ep_a", "timeout", 0),
    }


async def test_groups_are_listed_by_id_with_status_application_and_endpoint_filters(
    store: Store,
) -> None:
    """Pages by id (newest first when descending) reach every group once; each filter
    keeps only its groups, and they combine."""
    await store.add_failures([_sighting()])
    await store.add_failures([_sighting(endpoint_id="ep_b")])
    await store.add_failures([_sighting(endpoint_id="ep_c", app_id="app_c")])
    await store.add_failures([_sighting(code=500)])
    groups = await _only(store)
    by_key = {(g.endpoint_id, g.status_code): g for g in groups}
    assert await store.acknowledge_failure_group(by_key[("ep_b", 503)].id, T0)
    assert await store.resolve_failure_group(by_key[("ep_a", 500)].id, T0, ResolvedBy.OPERATOR)

    seen: list[str] = []
    iterator: str | None = None
    while True:
        page = await store.list_failure_groups(ListQuery(2, iterator, True), GroupFilter())
        seen += [g.id for g in page.data]
        if page.done:
            break
        iterator = page.iterator
    assert seen == sorted((g.id for g in groups), reverse=True)

    async def ids(filters: GroupFilter) -> set[tuple[str, int]]:
        found = await store.list_failure_groups(ListQuery(limit=250), filters)
        return {(g.endpoint_id, g.status_code) for g in found.data}

    assert await ids(GroupFilter(status=GroupStatus.OPEN)) == {("ep_a", 503), ("ep_c", 503)}
    assert await ids(GroupFilter(status=GroupStatus.ACKNOWLEDGED)) == {("ep_b", 503)}
    assert await ids(GroupFilter(status=GroupStatus.RESOLVED)) == {("ep_a", 500)}
    assert await ids(GroupFilter(app_id="app_c")) == {("ep_c", 503)}
    assert await ids(GroupFilter(endpoint_id="ep_a")) == {("ep_a", 503), ("ep_a", 500)}
    both = GroupFilter(status=GroupStatus.OPEN, app_id="app_a", endpoint_id="ep_a")
    assert await ids(both) == {("ep_a", 503)}


async def test_quiet_groups_are_the_unresolved_ones_last_seen_before_the_cutoff(
    store: Store,
) -> None:
    """Oldest last failure first, at most ``limit``, a page after the last group of the
    previous one; a resolved or a recent group is not listed."""
    await store.add_failures([_sighting(endpoint_id="ep_1", at=T0 + timedelta(minutes=2))])
    await store.add_failures([_sighting(endpoint_id="ep_2", at=T0)])
    await store.add_failures([_sighting(endpoint_id="ep_3", at=T0 + timedelta(minutes=20))])
    await store.add_failures([_sighting(endpoint_id="ep_4", at=T0 + timedelta(minutes=1))])
    ep_4 = next(g for g in await _only(store) if g.endpoint_id == "ep_4")
    assert await store.resolve_failure_group(ep_4.id, T0, ResolvedBy.OPERATOR)
    cutoff = T0 + timedelta(minutes=10)
    quiet = await store.quiet_failure_groups(cutoff, 10)
    assert [g.endpoint_id for g in quiet] == ["ep_2", "ep_1"]
    (first,) = await store.quiet_failure_groups(cutoff, 1)
    assert first.endpoint_id == "ep_2"
    (second,) = await store.quiet_failure_groups(cutoff, 1, first)
    assert second.endpoint_id == "ep_1"
    assert await store.quiet_failure_groups(cutoff, 1, second) == []
    await store.add_failures([_sighting(endpoint_id="ep_5", at=T0)])
    ties = await store.quiet_failure_groups(cutoff, 10)
    # ep_2 and ep_5 failed last at the same instant: the id decides between them.
    assert {g.endpoint_id for g in ties[:2]} == {"ep_2", "ep_5"}
    assert ties[0].id < ties[1].id and ties[2].endpoint_id == "ep_1"
    after_tie = await store.quiet_failure_groups(cutoff, 10, ties[0])
    assert [g.endpoint_id for g in after_tie] == [ties[1].endpoint_id, "ep_1"]


async def test_an_automatic_resolve_loses_to_a_failure_added_since_it_read_the_group(
    store: Store,
) -> None:
    """With ``seen_until`` the resolve holds only if the last failure is not later; a
    resolved group is not resolved again nor acknowledged."""
    await store.add_failures([_sighting()])
    (group,) = await _only(store)
    await store.add_failures([_sighting(at=T0 + timedelta(minutes=1))])
    now = T0 + timedelta(minutes=30)
    assert not await store.resolve_failure_group(group.id, now, ResolvedBy.AUTOMATIC, T0)
    still = await store.failure_group(group.id)
    assert still is not None and still.status is GroupStatus.OPEN
    latest = T0 + timedelta(minutes=1)
    assert await store.resolve_failure_group(group.id, now, ResolvedBy.AUTOMATIC, latest)
    done = await store.failure_group(group.id)
    assert done is not None and done.resolved_by is ResolvedBy.AUTOMATIC
    assert not await store.resolve_failure_group(group.id, now, ResolvedBy.OPERATOR)
    assert not await store.acknowledge_failure_group(group.id, now)
    assert await store.failure_group("fgrp_absent") is None


async def test_retention_removes_groups_resolved_before_the_horizon_and_keeps_the_rest(
    store: Store,
) -> None:
    """``prune_failure_groups`` counts (dry) or removes at most ``limit`` groups resolved
    before ``before``; an unresolved group stays however old, and a retention pass reports
    what it removed."""
    for endpoint in ("ep_1", "ep_2", "ep_3", "ep_4"):
        await store.add_failures([_sighting(endpoint_id=endpoint, at=T0 - timedelta(days=90))])
    groups = {g.endpoint_id: g for g in await _only(store)}
    for endpoint, days in (("ep_1", 60), ("ep_2", 50), ("ep_3", 1)):
        at = T0 - timedelta(days=days)
        assert await store.resolve_failure_group(groups[endpoint].id, at, ResolvedBy.OPERATOR)
    horizon = T0 - timedelta(days=30)
    assert await store.prune_failure_groups(horizon, 10, dry_run=True) == 2
    assert await store.prune_failure_groups(horizon, 1) == 1
    report = await prune(store, horizon)
    assert report.failure_groups == 1
    assert sorted(g.endpoint_id for g in await _only(store)) == ["ep_3", "ep_4"]
