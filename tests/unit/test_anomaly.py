"""Anomaly detection's rules (``domain/anomaly.py``), driven by synthetic traffic.

A simulator makes a week of minute-by-minute traffic per subject (Poisson arrivals that may
follow the hour of the day, a steady failure share, log-normal durations bucketed as the
rollups bucket them), folds it into hour rows as the rollups do, and then runs the detector
minute by minute as a worker would, keeping the open anomalies as the store would. The
stated detection times of ``domain/anomaly.py`` are checked here: injected anomalies are
flagged within ``FLAGGED_WITHIN``; steady hours with normal noise raise none.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain import anomaly as rules
from hookline.domain.anomaly import Anomaly, Counts, Point, Subject
from hookline.domain.rollups import LATENCY_COLUMNS, latency_bucket

START = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
"""A Monday: the simulated history runs for a week from here."""
TEST_HOUR = START + timedelta(days=7, hours=14)
"""The hour judged: a week of history behind it, in the afternoon."""


def _total(counts: Iterable[Counts]) -> Counts:
    result = Counts()
    for one in counts:
        result = result + one
    return result


def _evaluate(
    subjects: Iterable[Subject],
    windows: Mapping[str, Counts],
    baselines: Mapping[str, rules.Baseline],
    open_anomalies: Iterable[Anomaly],
    now: datetime,
) -> rules.Judgement:
    """One pass over every subject at once, as one batch of ``Findings``."""
    found = rules.Findings()
    found.add(subjects, windows, baselines)
    return found.reconcile(open_anomalies, now)


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method for small means, a rounded normal for large ones."""
    if mean <= 0:
        return 0
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


@dataclass
class Traffic:
    """One subject's synthetic traffic; ``shape`` scales the rate by the hour of the day."""

    per_minute: float
    failure: float = 0.02
    median_ms: float = 80.0
    sigma: float = 0.6
    shape: Callable[[int], float] = lambda hour: 1.0

    def minute(self, rng: random.Random, at: datetime) -> Counts:
        attempts = _poisson(rng, self.per_minute * self.shape(at.hour))
        failed = sum(1 for _ in range(attempts) if rng.random() < self.failure)
        latency = [0] * len(LATENCY_COLUMNS)
        for _ in range(attempts):
            duration = self.median_ms * math.exp(rng.gauss(0.0, self.sigma))
            latency[latency_bucket(round(duration))] += 1
        return Counts(attempts, failed, tuple(latency))


@dataclass
class Simulation:
    """Minute rows of one subject (an endpoint of its own application), and the detector
    run over them as the store and a worker would run it."""

    traffic: Traffic
    seed: int = 1
    since: datetime = START
    subject: Subject = field(init=False)
    minutes: dict[datetime, Counts] = field(default_factory=dict)
    open: list[Anomaly] = field(default_factory=list)
    opened: list[tuple[datetime, Anomaly]] = field(default_factory=list)
    resolved: list[tuple[datetime, Anomaly]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.subject = Subject("app_1", "ep_1", self.since)
        self._rng = random.Random(self.seed)

    def run(self, start: datetime, end: datetime, traffic: Traffic | None = None) -> None:
        """Make the minutes in [start, end) with ``traffic`` (the subject's own if None)."""
        source = traffic or self.traffic
        at = start
        while at < end:
            self.minutes[at] = source.minute(self._rng, at)
            at += timedelta(minutes=1)

    def hours(self) -> dict[datetime, Counts]:
        hours: dict[datetime, Counts] = {}
        for at, counts in self.minutes.items():
            hour = rules.hour_start(at)
            hours[hour] = hours.get(hour, Counts()) + counts
        return hours

    def detect(self, start: datetime, end: datetime) -> None:
        """Evaluate at 10 s past every minute in [start, end), as a worker each minute."""
        hours = self.hours()
        at = start + timedelta(seconds=10)
        while at < end:
            # A baseline reads complete hours only: the current hour's row is still filling.
            usual = rules.baseline(self.subject, hours, at)
            window = _total(self.minutes.get(m, Counts()) for m in rules.window_minutes(at))
            judged = _evaluate([self.subject], {"ep_1": window}, {"ep_1": usual}, self.open, at)
            for anomaly, finding in judged.seen:
                self.open[self.open.index(anomaly)] = replace(
                    anomaly, last_seen_at=at, observed=finding.observed
                )
            for anomaly in judged.resolved:
                self.open.remove(anomaly)
                self.resolved.append((at, anomaly))
            for subject, finding in judged.opened:
                new = Anomaly(
                    f"anom_{len(self.opened)}",
                    finding.kind,
                    subject.app_id,
                    subject.endpoint_id,
                    at,
                    at,
                    None,
                    finding.observed,
                    finding.expected,
                    finding.basis,
                )
                self.open.append(new)
                self.opened.append((at, new))
            at += timedelta(minutes=1)

    def first(self, kind: str) -> datetime | None:
        return next((at for at, a in self.opened if a.kind == kind), None)


def _daily(hour: int) -> float:
    """Busy by day, a fifth of it at night."""
    return 0.2 + 0.8 * max(0.0, math.sin(math.pi * (hour - 6) / 14)) if 6 <= hour <= 20 else 0.2


def _office_hours(hour: int) -> float:
    """Traffic from 8:00 to 18:00 only."""
    return 1.0 if 8 <= hour < 18 else 0.0


STEADY = [
    Traffic(per_minute=20),
    Traffic(per_minute=8, failure=0.1, median_ms=300, sigma=0.9),
    Traffic(per_minute=40, shape=_daily),
    Traffic(per_minute=15, failure=0.0, median_ms=20, sigma=0.4, shape=_daily),
    Traffic(per_minute=2, failure=0.3),
    Traffic(per_minute=12, median_ms=2000, sigma=0.5),
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("traffic", STEADY, ids=lambda t: f"{t.per_minute}/min")
def test_a_steady_day_of_traffic_with_normal_noise_raises_no_anomaly(
    traffic: Traffic, seed: int
) -> None:
    """Each steady profile (busy, flaky, slow, daily, quiet), judged every minute of its
    eighth day against the seven before it, is never flagged."""
    sim = Simulation(traffic, seed=seed)
    end = START + timedelta(days=8)
    sim.run(START, end)
    sim.detect(START + timedelta(days=7), end)
    assert sim.opened == []


def _injected(traffic: Traffic, injected: Traffic, seed: int = 1) -> tuple[Simulation, datetime]:
    """A week of ``traffic``, one steady hour, then ``injected`` from 20 s into a minute."""
    sim = Simulation(traffic, seed=seed)
    onset = TEST_HOUR + timedelta(minutes=20, seconds=20)
    sim.run(START, TEST_HOUR + timedelta(minutes=20))
    sim.run(TEST_HOUR + timedelta(minutes=20), TEST_HOUR + timedelta(minutes=60), injected)
    sim.detect(TEST_HOUR - timedelta(hours=1), TEST_HOUR + timedelta(minutes=60))
    return sim, onset


@pytest.mark.parametrize("seed", [1, 2])
def test_every_attempt_failing_is_flagged_as_a_failure_spike_within_the_stated_time(
    seed: int,
) -> None:
    """An endpoint whose every attempt starts failing is flagged within ``FLAGGED_WITHIN``,
    with the window's failed share against its usual one, and nothing else is flagged."""
    traffic = Traffic(per_minute=20)
    sim, onset = _injected(traffic, replace(traffic, failure=1.0), seed)
    flagged = sim.first(rules.FAILURE_SPIKE)
    assert flagged is not None
    assert flagged - onset <= rules.FLAGGED_WITHIN
    spike = next(a for _, a in sim.opened if a.kind == rules.FAILURE_SPIKE)
    assert spike.observed - spike.expected >= rules.MIN_FAILURE_EXCESS
    assert spike.expected < 0.05
    assert {a.kind for _, a in sim.opened} == {rules.FAILURE_SPIKE}


def test_a_latency_five_times_the_usual_is_flagged_as_a_shift_within_the_stated_time() -> None:
    """The median duration going from 80 ms to 400 ms is a ``latency_shift``, flagged within
    ``FLAGGED_WITHIN``, reported in milliseconds."""
    traffic = Traffic(per_minute=20)
    sim, onset = _injected(traffic, replace(traffic, median_ms=400))
    flagged = sim.first(rules.LATENCY_SHIFT)
    assert flagged is not None
    assert flagged - onset <= rules.FLAGGED_WITHIN
    shift = next(a for _, a in sim.opened if a.kind == rules.LATENCY_SHIFT)
    assert shift.observed > 2 * shift.expected
    assert 50 <= shift.expected <= 120


def test_a_busy_producer_falling_silent_is_flagged_as_a_volume_drop_within_the_stated_time() -> (
    None
):
    """A subject making 20 attempts a minute that makes none is a ``volume_drop`` within
    ``FLAGGED_WITHIN``, its daily baseline in attempts a minute."""
    traffic = Traffic(per_minute=20)
    sim, onset = _injected(traffic, replace(traffic, per_minute=0))
    flagged = sim.first(rules.VOLUME_DROP)
    assert flagged is not None
    assert flagged - onset <= rules.FLAGGED_WITHIN
    drop = next(a for _, a in sim.opened if a.kind == rules.VOLUME_DROP)
    assert drop.observed < 5
    assert drop.expected == pytest.approx(20, rel=0.2)
    assert drop.basis == rules.DAILY


def test_a_halved_rate_is_no_drop() -> None:
    """Half the usual volume is a change, not an outage: only a fall to a quarter or less
    is flagged, so ordinary swings in a producer's traffic raise nothing."""
    traffic = Traffic(per_minute=20)
    sim, _ = _injected(traffic, replace(traffic, per_minute=10))
    assert sim.opened == []


def test_an_anomaly_ends_once_its_window_is_normal_again_and_is_not_reopened() -> None:
    """A ten-minute failure spike is flagged once and resolved after it ends, within the
    window's length plus ``RESOLVE_AFTER``."""
    traffic = Traffic(per_minute=20)
    sim = Simulation(traffic)
    spike_start = TEST_HOUR + timedelta(minutes=20)
    spike_end = spike_start + timedelta(minutes=10)
    sim.run(START, spike_start)
    sim.run(spike_start, spike_end, replace(traffic, failure=1.0))
    sim.run(spike_end, TEST_HOUR + timedelta(hours=1))
    sim.detect(TEST_HOUR, TEST_HOUR + timedelta(hours=1))
    assert [a.kind for _, a in sim.opened] == [rules.FAILURE_SPIKE]
    assert [a.kind for _, a in sim.resolved] == [rules.FAILURE_SPIKE]
    ended = sim.resolved[0][0]
    limit = timedelta(minutes=rules.WINDOW_MINUTES + 1) + rules.RESOLVE_AFTER
    assert spike_end < ended <= spike_end + limit
    assert sim.open == []


def test_a_producer_idle_at_night_is_judged_by_the_same_hour_on_past_days() -> None:
    """Office-hours traffic stops every evening: with a week of history the evening is
    judged against past evenings (silent too), so the stop raises nothing; at 10:00 on a
    working day, silence is a volume drop."""
    traffic = Traffic(per_minute=20, shape=_office_hours)
    evening = START + timedelta(days=7, hours=18)
    sim = Simulation(traffic)
    sim.run(START, evening + timedelta(hours=2))
    sim.detect(evening - timedelta(minutes=30), evening + timedelta(hours=2))
    assert sim.opened == []

    morning = START + timedelta(days=7, hours=10)
    silent = Simulation(traffic)
    silent.run(START, morning)
    silent.run(morning, morning + timedelta(minutes=30), replace(traffic, per_minute=0))
    silent.detect(morning, morning + timedelta(minutes=30))
    assert [a.kind for _, a in silent.opened] == [rules.VOLUME_DROP]
    assert silent.opened[0][1].basis == rules.DAILY


def test_a_young_subject_is_judged_by_its_recent_hours_and_not_before_three_of_them() -> None:
    """Under ``MIN_SEASONAL_DAYS`` old, volume is judged against the last hours
    (``recent``); with under ``MIN_BASELINE_HOURS`` hours of history, nothing is judged."""
    born = TEST_HOUR - timedelta(hours=2)
    newborn = Simulation(Traffic(per_minute=20), since=born)
    newborn.run(born, TEST_HOUR)
    newborn.run(TEST_HOUR, TEST_HOUR + timedelta(minutes=20), Traffic(per_minute=0))
    newborn.detect(TEST_HOUR, TEST_HOUR + timedelta(minutes=20))
    assert newborn.opened == []

    born = TEST_HOUR - timedelta(days=1)
    young = Simulation(Traffic(per_minute=20), since=born)
    young.run(born, TEST_HOUR)
    young.run(TEST_HOUR, TEST_HOUR + timedelta(minutes=20), Traffic(per_minute=0))
    young.detect(TEST_HOUR, TEST_HOUR + timedelta(minutes=20))
    assert [(a.kind, a.basis) for _, a in young.opened] == [(rules.VOLUME_DROP, rules.RECENT)]


def test_a_quiet_endpoints_few_failures_are_no_spike() -> None:
    """Below ``MIN_FAILURE_ATTEMPTS`` in the window the failure share is not judged: three
    failures out of five attempts on an endpoint that usually succeeds raise nothing."""
    usual = rules.Baseline(None, rules.RECENT, rules.Spread(0.0, 0.0), None)
    assert rules.judge(Counts(5, 3), usual) == []
    busy = Counts(40, 24, (40,) + (0,) * (len(LATENCY_COLUMNS) - 1))
    assert [f.kind for f in rules.judge(busy, usual)] == [rules.FAILURE_SPIKE]


def test_the_median_is_interpolated_inside_its_bucket() -> None:
    """Half the durations at or under 10 ms and half in (10, 25] puts the median at the
    10 ms edge; all in (50, 100] puts it mid-bucket; the open last bucket gives 15 s."""
    buckets = [0] * len(LATENCY_COLUMNS)
    buckets[0], buckets[1] = 5, 5
    assert Counts(10, 0, tuple(buckets)).median_ms() == pytest.approx(10.0)
    buckets = [0] * len(LATENCY_COLUMNS)
    buckets[3] = 10
    assert Counts(10, 0, tuple(buckets)).median_ms() == pytest.approx(75.0)
    buckets = [0] * len(LATENCY_COLUMNS)
    buckets[-1] = 3
    assert Counts(3, 0, tuple(buckets)).median_ms() == 15000.0
    assert Counts().median_ms() is None


def test_spread_is_robust_to_one_odd_hour() -> None:
    """One hour ten times the others moves neither the median nor the scaled MAD much."""
    spread = rules.spread_of([10, 11, 9, 10, 12, 10, 100])
    assert spread.centre == 10
    assert spread.spread == pytest.approx(1.4826)


def test_applications_with_several_endpoints_are_judged_as_a_whole() -> None:
    """An application with two enabled endpoints is a subject of its own, since its oldest
    endpoint; an application with one is not (its endpoint says the same)."""
    early, late = START, START + timedelta(days=1)
    endpoints = [
        Subject("app_a", "ep_1", late),
        Subject("app_a", "ep_2", early),
        Subject("app_b", "ep_3", early),
    ]
    assert rules.applications(endpoints) == [Subject("app_a", None, early)]


def test_rows_add_up_per_endpoint_and_per_application() -> None:
    """``by_subject`` keeps each endpoint's rows and sums an application's endpoints per
    start."""
    at = START
    points = [
        Point("ep_1", "app_a", at, Counts(3, 1)),
        Point("ep_2", "app_a", at, Counts(4, 0)),
        Point("ep_2", "app_a", at + timedelta(minutes=1), Counts(1, 1)),
    ]
    found = rules.by_subject(points)
    assert found["ep_1"] == {at: Counts(3, 1)}
    assert found["app_a"][at] == Counts(7, 1)
    assert found["app_a"][at + timedelta(minutes=1)] == Counts(1, 1)


def test_an_open_anomaly_of_a_subject_no_longer_judged_ends() -> None:
    """An endpoint deleted or disabled (no longer a subject) ends its open anomalies at the
    next pass, whatever its rule."""
    held = Anomaly("anom_1", rules.FAILURE_SPIKE, "app_a", "ep_1", START, START, None, 1, 0, "r")
    judged = _evaluate([], {}, {}, [held], START + timedelta(minutes=1))
    assert judged.resolved == [held]


def test_a_description_says_what_was_seen_against_what_is_usual() -> None:
    """The words of logs and operational webhooks carry the figures in their units."""
    spike = Anomaly("a", rules.FAILURE_SPIKE, "app_a", "ep_1", START, START, None, 0.64, 0.02, "")
    assert "64% of the attempts to endpoint ep_1 of app_a failed" in rules.describe(spike)
    drop = replace(spike, kind=rules.VOLUME_DROP, endpoint_id=None, observed=0, expected=20)
    text = rules.describe(drop)
    assert "application app_a made 0.0 attempts a minute" in text
    assert "20.0 over the last day" in text


def test_batches_keep_applications_whole_and_near_the_size() -> None:
    """A pass reads endpoints a batch at a time; an application's endpoints are never split
    (its total needs them all), and a batch closes once the next application would pass the
    size, unless it is empty (a large application makes a batch of its own)."""
    endpoints = [
        *(Subject("app_a", f"ep_a{i}", START) for i in range(3)),
        *(Subject("app_b", f"ep_b{i}", START) for i in range(6)),
        *(Subject("app_c", f"ep_c{i}", START) for i in range(2)),
        Subject("app_a", "ep_a3", START),
    ]
    found = rules.batches(endpoints, 5)
    assert [[s.key for s in batch] for batch in found] == [
        ["ep_a0", "ep_a1", "ep_a2", "ep_a3"],
        ["ep_b0", "ep_b1", "ep_b2", "ep_b3", "ep_b4", "ep_b5"],
        ["ep_c0", "ep_c1"],
    ]
    assert rules.batches([], 5) == []


def test_judging_in_batches_finds_what_one_batch_finds() -> None:
    """``Findings`` added batch by batch reconcile to the same judgement as all at once."""
    usual = rules.Baseline(None, rules.RECENT, rules.Spread(0.0, 0.0), None)
    failing = Counts(40, 40, (40,) + (0,) * (len(LATENCY_COLUMNS) - 1))
    subjects = [Subject("app_a", f"ep_{i}", START) for i in range(6)]
    windows = {s.key: failing if i % 2 else Counts() for i, s in enumerate(subjects)}
    baselines = {s.key: usual for s in subjects}
    at = START + timedelta(hours=5)
    whole = _evaluate(subjects, windows, baselines, [], at)
    found = rules.Findings()
    for batch in (subjects[:2], subjects[2:5], subjects[5:]):
        found.add(batch, windows, baselines)
    assert found.reconcile([], at) == whole
    assert [s.key for s, _ in whole.opened] == ["ep_1", "ep_3", "ep_5"]
