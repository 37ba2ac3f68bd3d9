"""The storage contract for anomaly detection, on every backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: the rollup
rows detection reads (``rollup_points``, ``rollup_totals``) and the subjects it judges
(``anomaly_subjects``), and the anomalies it keeps: at most one open per subject and kind,
seen, resolved once, listed by id and status, and pruned by retention once resolved before
the horizon.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

from hookline.delivery.retention import prune
from hookline.domain import ids
from hookline.domain.anomaly import (
    DAILY,
    FAILURE_SPIKE,
    LATENCY_SHIFT,
    RECENT,
    VOLUME_DROP,
    Anomaly,
    Counts,
    Point,
    Subject,
)
from hookline.domain.models import ClaimedDelivery
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.domain.policy import AnomalyPolicy, EndpointPolicy
from hookline.domain.rollups import HOUR_SECONDS, LATENCY_COLUMNS, MINUTE_SECONDS
from hookline.storage.base import ListQuery, Store
from tests.conftest import make_app, make_endpoint, make_message, recorded_outcome, utcnow

HOUR = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


async def _claimed(store: Store, n: int) -> list[ClaimedDelivery]:
    """``n`` deliveries of one new endpoint (in a new application), claimed."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    now = utcnow()
    await store.publish([make_message(app) for _ in range(n)], now)
    return await store.claim_due(n, now, now + timedelta(seconds=30), "w1")


def _counts(attempts: int, failed: int, *buckets: int) -> Counts:
    """Counts with one duration in each of the given latency buckets (indexes may repeat)."""
    latency = [0] * len(LATENCY_COLUMNS)
    for bucket in buckets:
        latency[bucket] += 1
    return Counts(attempts, failed, tuple(latency))


def _point_key(point: Point) -> tuple[str, datetime]:
    return point.endpoint_id, point.start


def _anomaly(
    app_id: str,
    endpoint_id: str | None,
    kind: str = FAILURE_SPIKE,
    at: datetime = T0,
    observed: float = 0.75,
    expected: float = 0.0625,
    basis: str = RECENT,
) -> Anomaly:
    """An open anomaly detected (and last seen) at ``at``."""
    return Anomaly(
        id=ids.new_id(ids.ANOMALY),
        kind=kind,
        app_id=app_id,
        endpoint_id=endpoint_id,
        detected_at=at,
        last_seen_at=at,
        resolved_at=None,
        observed=observed,
        expected=expected,
        basis=basis,
    )


async def _all(store: Store, status: str | None, descending: bool, limit: int = 2) -> list[str]:
    """The ids of every anomaly ``list_anomalies`` gives for ``status``, page by page."""
    found: list[str] = []
    iterator: str | None = None
    for _ in range(50):
        page = await store.list_anomalies(ListQuery(limit, iterator, descending), status)
        assert len(page.data) <= limit
        found += [a.id for a in page.data]
        if page.done:
            return found
        iterator = page.iterator
    raise AssertionError("list_anomalies never finished")


# -- what detection reads -------------------------------------------------------------------


async def test_rollup_points_are_every_endpoints_rows_of_one_period_at_the_asked_starts(
    store: Store,
) -> None:
    """``rollup_points`` returns the asked endpoints' rows of the asked period that start at
    one of the asked starts, and no other: not a row at another start, not a row of the
    other period that starts at the same instant, not another endpoint's. Failed is
    attempts minus successes (a timeout and a 5xx both count), and the latency buckets hold
    each attempt's duration. ``rollup_totals`` adds the rows in a range up per endpoint."""
    a = await _claimed(store, 4)
    b = await _claimed(store, 3)
    m0, m1, m2 = HOUR, HOUR + timedelta(minutes=1), HOUR + timedelta(minutes=2)
    await store.complete(
        [
            recorded_outcome(a[0], 200, m0 + timedelta(seconds=5), 20),  # bucket 1 (10, 25]
            recorded_outcome(a[1], 503, m0 + timedelta(seconds=50), 700),  # bucket 6 (500, 1000]
            recorded_outcome(a[2], 500, m1 + timedelta(seconds=1), 50),  # bucket 2 (25, 50]
            recorded_outcome(a[3], 200, m2 + timedelta(seconds=30), 5),  # bucket 0 [0, 10]
            recorded_outcome(b[0], 0, m0 + timedelta(seconds=10), 15000),  # bucket 10, a timeout
            recorded_outcome(b[1], 200, m2, 20000),  # bucket 11, past the last edge
            recorded_outcome(b[2], 200, HOUR + timedelta(hours=1, minutes=2), 30),  # another hour
        ]
    )
    ep_a, app_a = a[0].endpoint.id, a[0].endpoint.app_id
    ep_b, app_b = b[0].endpoint.id, b[0].endpoint.app_id
    both_eps = [ep_a, ep_b]

    minutes = sorted(await store.rollup_points(MINUTE_SECONDS, [m0, m2], both_eps), key=_point_key)
    assert minutes == sorted(
        [
            Point(ep_a, app_a, m0, _counts(2, 1, 1, 6)),
            Point(ep_a, app_a, m2, _counts(1, 0, 0)),
            Point(ep_b, app_b, m0, _counts(1, 1, 10)),
            Point(ep_b, app_b, m2, _counts(1, 0, 11)),
        ],
        key=_point_key,
    )

    hours = sorted(await store.rollup_points(HOUR_SECONDS, [HOUR], both_eps), key=_point_key)
    assert hours == sorted(
        [
            Point(ep_a, app_a, HOUR, _counts(4, 2, 0, 1, 2, 6)),
            Point(ep_b, app_b, HOUR, _counts(2, 1, 10, 11)),
        ],
        key=_point_key,
    )
    later = HOUR + timedelta(hours=1)
    next_hour = Point(ep_b, app_b, later, _counts(1, 0, 2))  # 30 ms: bucket 2 (25, 50]
    assert await store.rollup_points(HOUR_SECONDS, [later], both_eps) == [next_hour]
    both = await store.rollup_points(HOUR_SECONDS, [HOUR, later], both_eps)
    assert sorted(both, key=_point_key) == sorted([*hours, next_hour], key=_point_key)
    only_a = await store.rollup_points(HOUR_SECONDS, [HOUR, later], [ep_a])
    assert only_a == [Point(ep_a, app_a, HOUR, _counts(4, 2, 0, 1, 2, 6))]

    totals = await store.rollup_totals(MINUTE_SECONDS, m0, m2, both_eps)
    assert totals == {ep_a: _counts(3, 2, 1, 6, 2), ep_b: _counts(1, 1, 10)}
    assert await store.rollup_totals(MINUTE_SECONDS, m0, m2 + timedelta(minutes=1), [ep_b]) == {
        ep_b: _counts(2, 1, 10, 11)
    }
    assert await store.rollup_totals(HOUR_SECONDS, m0, m2, both_eps) == {
        ep_a: _counts(4, 2, 0, 1, 2, 6),
        ep_b: _counts(2, 1, 10, 11),
    }


async def test_rollup_points_of_no_starts_or_of_starts_without_rows_are_empty(
    store: Store,
) -> None:
    """No starts, no endpoints, or starts no row begins at (including one inside a row's
    minute), give no points; no endpoints or an empty range give no totals."""
    claimed = await _claimed(store, 1)
    await store.complete([recorded_outcome(claimed[0], 200, HOUR + timedelta(seconds=30), 20)])
    ep = [claimed[0].endpoint.id]
    assert await store.rollup_points(MINUTE_SECONDS, [], ep) == []
    assert await store.rollup_points(MINUTE_SECONDS, [HOUR], []) == []
    inside = HOUR + timedelta(seconds=30)
    assert (
        await store.rollup_points(MINUTE_SECONDS, [inside, HOUR - timedelta(minutes=1)], ep) == []
    )
    assert len(await store.rollup_points(MINUTE_SECONDS, [HOUR], ep)) == 1
    assert await store.rollup_totals(MINUTE_SECONDS, HOUR, HOUR + timedelta(minutes=1), []) == {}
    assert await store.rollup_totals(MINUTE_SECONDS, HOUR, HOUR, ep) == {}


async def test_anomaly_subjects_are_the_enabled_endpoints_but_the_operational_ones(
    store: Store,
) -> None:
    """Every enabled endpoint, with its application and its creation time; a disabled
    endpoint, one whose policy mutes detection (``anomalies.detect`` false) and the
    operational-webhooks application's endpoints are not judged; one whose policy says
    ``detect`` true is."""
    created = datetime(2026, 11, 30, 8, 15, 30, tzinfo=UTC)
    acme, beta = make_app(), make_app(name="Beta")
    for app in (acme, beta):
        await store.create_application(app)
    enabled = dataclasses.replace(make_endpoint(acme), created_at=created)
    other = dataclasses.replace(
        make_endpoint(beta), created_at=created + timedelta(days=1, milliseconds=250)
    )
    await store.create_endpoint(enabled)
    await store.create_endpoint(other)
    await store.create_endpoint(make_endpoint(acme, "https://example.com/off", disabled=True))
    muted = dataclasses.replace(
        make_endpoint(acme, "https://example.com/erratic"),
        policy=EndpointPolicy(anomalies=AnomalyPolicy(detect=False)),
    )
    await store.create_endpoint(muted)
    judged = dataclasses.replace(
        make_endpoint(beta, "https://example.com/judged"),
        created_at=created,
        policy=EndpointPolicy(anomalies=AnomalyPolicy(detect=True)),
    )
    await store.create_endpoint(judged)
    operational = dataclasses.replace(make_app(name="hookline operational"), id=OPERATIONAL_APP_ID)
    await store.create_application(operational)
    await store.create_endpoint(make_endpoint(operational, "https://ops.example.com/hook"))

    subjects = sorted(await store.anomaly_subjects(), key=lambda s: s.key)
    assert subjects == sorted(
        [
            Subject(acme.id, enabled.id, created),
            Subject(beta.id, other.id, created + timedelta(days=1, milliseconds=250)),
            Subject(beta.id, judged.id, created),
        ],
        key=lambda s: s.key,
    )


async def test_no_endpoints_means_no_subjects(store: Store) -> None:
    """An empty store has nothing to judge."""
    assert await store.anomaly_subjects() == []


# -- the anomalies kept ----------------------------------------------------------------------


async def test_an_anomaly_opens_once_per_subject_and_kind(store: Store) -> None:
    """``open_anomaly`` stores a new anomaly as given and says True; a second open anomaly
    of the same subject and kind says False and writes nothing (the first stays as it
    was), while another kind of the same subject, the same kind of another endpoint, and
    the application-wide subject each open their own."""
    first = _anomaly("app_a", "ep_1", FAILURE_SPIKE, basis=DAILY)
    assert await store.open_anomaly(first) is True
    assert await store.open_anomalies() == [first]

    again = _anomaly("app_a", "ep_1", FAILURE_SPIKE, T0 + timedelta(minutes=1), 0.5, 0.25)
    assert await store.open_anomaly(again) is False
    assert await store.open_anomalies() == [first]
    assert (await store.list_anomalies(ListQuery(), None)).data == [first]

    others = [
        _anomaly("app_a", "ep_1", LATENCY_SHIFT, observed=900.5, expected=120.0),
        _anomaly("app_a", "ep_2", FAILURE_SPIKE),
        _anomaly("app_a", None, FAILURE_SPIKE),
    ]
    for other in others:
        assert await store.open_anomaly(other) is True, other
    assert sorted(await store.open_anomalies(), key=lambda a: a.id) == [first, *others]
    assert others[2].scope == "application"


async def test_a_resolved_anomaly_no_longer_blocks_a_new_one_of_its_subject_and_kind(
    store: Store,
) -> None:
    """Once the open anomaly is resolved, the same subject and kind can open again; the
    resolved one is kept, with its end."""
    first = _anomaly("app_a", "ep_1", VOLUME_DROP, observed=0.0, expected=12.5)
    assert await store.open_anomaly(first)
    ended = T0 + timedelta(minutes=9)
    assert await store.resolve_anomaly(first.id, ended)
    second = _anomaly("app_a", "ep_1", VOLUME_DROP, T0 + timedelta(minutes=20), 0.0, 12.5)
    assert await store.open_anomaly(second) is True
    assert await store.open_anomaly(_anomaly("app_a", "ep_1", VOLUME_DROP)) is False
    assert await store.open_anomalies() == [second]
    listed = (await store.list_anomalies(ListQuery(), None)).data
    assert listed == [dataclasses.replace(first, resolved_at=ended), second]


async def test_seeing_an_open_anomaly_moves_its_last_seen_time_and_observed_value(
    store: Store,
) -> None:
    """``see_anomalies`` sets each given open anomaly's ``last_seen_at`` and ``observed``
    and leaves the rest (its detection time, expectation and basis, the anomalies not
    given, and a resolved one given anyway) as they were; seeing none does nothing."""
    seen = _anomaly("app_a", "ep_1", observed=0.5)
    unseen = _anomaly("app_a", "ep_2")
    closed = _anomaly("app_a", "ep_3")
    for anomaly in (seen, unseen, closed):
        assert await store.open_anomaly(anomaly)
    ended = T0 + timedelta(minutes=6)
    assert await store.resolve_anomaly(closed.id, ended)
    later = T0 + timedelta(minutes=3, milliseconds=500)
    await store.see_anomalies([(seen.id, 0.875), (closed.id, 0.99)], later)
    await store.see_anomalies([], later + timedelta(minutes=1))
    listed = (await store.list_anomalies(ListQuery(), None)).data
    assert listed == [
        dataclasses.replace(seen, last_seen_at=later, observed=0.875),
        unseen,
        dataclasses.replace(closed, resolved_at=ended),
    ]


async def test_an_anomaly_is_resolved_once(store: Store) -> None:
    """``resolve_anomaly`` ends an open anomaly and says True; a second call (another
    worker's) says False and keeps the first end; an unknown id says False."""
    anomaly = _anomaly("app_a", "ep_1")
    await store.open_anomaly(anomaly)
    ended = T0 + timedelta(minutes=7)
    assert await store.resolve_anomaly(anomaly.id, ended) is True
    assert await store.resolve_anomaly(anomaly.id, ended + timedelta(minutes=1)) is False
    assert await store.resolve_anomaly(ids.new_id(ids.ANOMALY), ended) is False
    assert (await store.list_anomalies(ListQuery(), None)).data == [
        dataclasses.replace(anomaly, resolved_at=ended)
    ]
    assert await store.open_anomalies() == []


async def test_open_anomalies_are_only_the_unresolved_ones(store: Store) -> None:
    """``open_anomalies`` leaves out every resolved anomaly, however recent."""
    kept = [_anomaly("app_a", f"ep_{i}") for i in range(4)]
    for anomaly in kept:
        await store.open_anomaly(anomaly)
    await store.resolve_anomaly(kept[1].id, T0 + timedelta(minutes=5))
    await store.resolve_anomaly(kept[3].id, T0 + timedelta(minutes=5))
    assert sorted(await store.open_anomalies(), key=lambda a: a.id) == [kept[0], kept[2]]


async def test_anomalies_are_listed_by_id_in_pages_by_status(store: Store) -> None:
    """``list_anomalies`` pages by id, ascending or descending; ``status`` None lists all,
    ``open`` the unresolved and ``resolved`` the ended ones; each page holds at most the
    limit and the pages together hold each anomaly once."""
    made = [_anomaly("app_a", f"ep_{i}", at=T0 + timedelta(minutes=i)) for i in range(5)]
    for anomaly in made:
        assert await store.open_anomaly(anomaly)
    every = sorted(a.id for a in made)
    resolved = [every[1], every[4]]
    for anomaly_id in resolved:
        assert await store.resolve_anomaly(anomaly_id, T0 + timedelta(hours=1))
    still_open = [i for i in every if i not in resolved]

    assert await _all(store, None, descending=False) == every
    assert await _all(store, None, descending=True) == every[::-1]
    assert await _all(store, "open", descending=True) == still_open[::-1]
    assert await _all(store, "open", descending=False, limit=1) == still_open
    assert await _all(store, "resolved", descending=True) == resolved[::-1]
    assert await _all(store, "resolved", descending=False, limit=5) == resolved

    page = await store.list_anomalies(ListQuery(2, None, True), None)
    assert [a.id for a in page.data] == every[:-3:-1] and not page.done
    assert all(
        a.resolved_at is None for a in (await store.list_anomalies(ListQuery(), "open")).data
    )


async def test_an_applications_anomalies_are_listed_apart(store: Store) -> None:
    """``app_id`` keeps one application's anomalies (its endpoints' and its own), with or
    without ``status``."""
    ours = [_anomaly("app_a", "ep_1"), _anomaly("app_a", None, kind=VOLUME_DROP)]
    theirs = _anomaly("app_b", "ep_2")
    for anomaly in (*ours, theirs):
        assert await store.open_anomaly(anomaly)
    assert await store.resolve_anomaly(ours[0].id, T0 + timedelta(hours=1))
    page = await store.list_anomalies(ListQuery(), None, "app_a")
    assert [a.id for a in page.data] == sorted(a.id for a in ours)
    assert [a.id for a in (await store.list_anomalies(ListQuery(), "open", "app_a")).data] == [
        ours[1].id
    ]
    assert [a.id for a in (await store.list_anomalies(ListQuery(), None, "app_b")).data] == [
        theirs.id
    ]
    assert (await store.list_anomalies(ListQuery(), None, "app_c")).data == []


async def test_an_empty_list_of_anomalies_is_one_done_page(store: Store) -> None:
    """No anomalies: an empty page, done, for each status."""
    for status in (None, "open", "resolved"):
        page = await store.list_anomalies(ListQuery(), status)
        assert page.data == [] and page.done


async def test_resolved_anomalies_are_pruned_before_the_horizon_in_batches(store: Store) -> None:
    """``prune_anomalies`` removes at most ``limit`` of the anomalies resolved before the
    horizon per call; an open anomaly stays however old, as does one resolved at or after
    the horizon; a dry run counts (at most ``limit``) without removing."""
    long_ago = T0 - timedelta(days=400)
    old = [_anomaly("app_a", f"ep_{i}", at=long_ago) for i in range(3)]
    forgotten = _anomaly("app_a", "ep_open", at=long_ago)
    recent = _anomaly("app_a", "ep_recent", at=long_ago)
    for anomaly in (*old, forgotten, recent):
        assert await store.open_anomaly(anomaly)
    horizon = T0 - timedelta(days=30)
    for i, anomaly in enumerate(old):
        assert await store.resolve_anomaly(anomaly.id, long_ago + timedelta(minutes=10 + i))
    assert await store.resolve_anomaly(recent.id, horizon)

    assert await store.prune_anomalies(horizon, 100, dry_run=True) == 3
    assert await store.prune_anomalies(horizon, 2, dry_run=True) == 2
    assert len((await store.list_anomalies(ListQuery(), None)).data) == 5
    assert await store.prune_anomalies(horizon, 2) == 2
    assert await store.prune_anomalies(horizon, 2) == 1
    assert await store.prune_anomalies(horizon, 2) == 0
    left = (await store.list_anomalies(ListQuery(), None)).data
    assert sorted(a.id for a in left) == sorted([forgotten.id, recent.id])
    assert await store.open_anomalies() == [forgotten]


async def test_retention_reports_the_resolved_anomalies_it_prunes(store: Store) -> None:
    """A retention pass removes the anomalies resolved before its horizon and counts them
    in ``PruneReport.anomalies``; a dry run counts them and removes nothing; an open
    anomaly is never pruned."""
    long_ago = T0 - timedelta(days=90)
    gone = _anomaly("app_a", "ep_1", at=long_ago)
    open_one = _anomaly("app_a", "ep_2", at=long_ago)
    for anomaly in (gone, open_one):
        assert await store.open_anomaly(anomaly)
    assert await store.resolve_anomaly(gone.id, long_ago + timedelta(minutes=5))
    before = T0 - timedelta(days=30)
    assert (await prune(store, before, dry_run=True)).anomalies == 1
    assert len((await store.list_anomalies(ListQuery(), None)).data) == 2
    assert (await prune(store, before)).anomalies == 1
    assert (await store.list_anomalies(ListQuery(), None)).data == [open_one]
    assert (await prune(store, T0 + timedelta(days=1))).anomalies == 0


async def test_a_lease_is_held_by_one_holder_until_it_runs_out(store: Store) -> None:
    """``take_lease``: the first caller takes it; another cannot while it holds; its holder
    renews it; once it ran out, another takes it over, and the old holder then cannot."""
    name, later = "anomaly-detection", T0 + timedelta(minutes=3)
    assert await store.take_lease(name, "wrk_a", T0, later)
    assert not await store.take_lease(name, "wrk_b", T0 + timedelta(minutes=1), later)
    renewed = T0 + timedelta(minutes=5)
    assert await store.take_lease(name, "wrk_a", T0 + timedelta(minutes=2), renewed)
    assert not await store.take_lease(name, "wrk_b", later, later + timedelta(minutes=3))
    assert await store.take_lease(name, "wrk_b", renewed, renewed + timedelta(minutes=3))
    assert not await store.take_lease(name, "wrk_a", renewed, renewed + timedelta(minutes=3))
    assert await store.take_lease("another-job", "wrk_a", renewed, renewed)
