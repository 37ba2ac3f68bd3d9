"""Anomaly detection: the pure rules that say when an endpoint's or an application's traffic
is not what it usually is.

Everything is judged from the attempt rollups (``domain/rollups.py``), so detection costs a
few indexed reads a minute, never a scan of attempts. Three kinds are flagged:

- ``failure_spike``: the share of failed attempts in the last ``WINDOW_MINUTES`` is well
  above its usual share;
- ``latency_shift``: the median attempt duration in the window is well above its usual
  median;
- ``volume_drop``: a normally busy subject made far fewer attempts than usual, down to none
  (a producer that stopped publishing, or deliveries that stopped going out).

**Baselines are robust statistics over hour rows**: the median and the median absolute
deviation (scaled by 1.4826, so that it estimates a standard deviation) of the subject's
hourly figures, so that one odd hour does not move them. Volume follows the clock (a
producer busy by day and idle at night), so once a subject is ``MIN_SEASONAL_DAYS`` old its
volume baseline is the *same hour of the day* over the past ``SEASONAL_DAYS`` days
(``"daily"``); before that, the last ``RECENT_HOURS`` hours (``"recent"``). Failure share
and latency rarely follow the clock, so they always use the last ``RECENT_HOURS`` hours,
which gives more samples. A subject with fewer than ``MIN_BASELINE_HOURS`` hours of history
is not judged.

**A flag needs a large and a significant change.** Each rule requires an absolute floor (a
failure share 25 points higher, a median 100 ms slower, at most a quarter of the usual
volume), and a distance from the baseline of ``SIGNIFICANCE`` standard deviations, where the
deviation counts both how much the hourly figures vary and how noisy a window of that many
attempts is (binomial for the failure share, Poisson for the volume). Windows with too few
attempts are not judged at all, so a quiet endpoint's one failure is no spike.

**An anomaly ends** once its rule has not held for ``RESOLVE_AFTER`` (the window's length, so
that the window no longer holds the anomalous minutes), or when its subject is gone.

Stated detection times (tests/unit/test_anomaly.py checks them with synthetic traffic):
every attempt failing is flagged within ``FLAGGED_WITHIN`` of its start, as is a median five
times slower and a busy producer falling silent, when the detector evaluates every minute.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

from hookline.domain.rollups import (
    HOUR_SECONDS,
    LATENCY_COLUMNS,
    LATENCY_EDGES_MS,
    MINUTE_SECONDS,
    floor_to,
)

FAILURE_SPIKE = "failure_spike"
LATENCY_SHIFT = "latency_shift"
VOLUME_DROP = "volume_drop"
KINDS = (FAILURE_SPIKE, LATENCY_SHIFT, VOLUME_DROP)

ENDPOINT = "endpoint"
APPLICATION = "application"
SCOPES = (ENDPOINT, APPLICATION)

RECENT = "recent"
DAILY = "daily"

UNITS = {FAILURE_SPIKE: "ratio", LATENCY_SHIFT: "ms", VOLUME_DROP: "per_minute"}
"""What ``observed`` and ``expected`` count, per kind: the share of failed attempts, the
median attempt duration in milliseconds, attempts per minute."""

WINDOW_MINUTES = 5
"""The window judged: the last complete minutes (the current minute is still filling)."""
RECENT_HOURS = 24
SEASONAL_DAYS = 7
MIN_SEASONAL_DAYS = 3
MIN_BASELINE_HOURS = 3
MIN_HOUR_ATTEMPTS = 10
"""An hour with fewer attempts says too little of its failure share or latency to be a
sample of their baseline (it still counts for volume)."""
MIN_FAILURE_ATTEMPTS = 20
MIN_LATENCY_ATTEMPTS = 50
"""A median of fewer durations moves too much by chance for a twofold shift to mean much."""
MIN_EXPECTED_ATTEMPTS = 30
"""A subject is busy enough to have its volume judged when it usually makes this many
attempts in a window (six a minute): at that rate a silent window happens by chance about
once in 10¹³."""
SIGNIFICANCE = 4.0
MIN_FAILURE_EXCESS = 0.25
LATENCY_RATIO = 2.0
MIN_LATENCY_SHIFT_MS = 100.0
DROP_FRACTION = 0.25
MAD_TO_SD = 1.4826
RESOLVE_AFTER = timedelta(minutes=WINDOW_MINUTES)
FLAGGED_WITHIN = timedelta(minutes=WINDOW_MINUTES + 2)


@dataclass(frozen=True, slots=True)
class Counts:
    """What a subject's attempts did in a span: how many, how many failed, and their
    durations as counts per bucket of ``LATENCY_EDGES_MS`` (as the rollups keep them)."""

    attempts: int = 0
    failed: int = 0
    latency: tuple[int, ...] = (0,) * len(LATENCY_COLUMNS)

    def __add__(self, other: Counts) -> Counts:
        latency = tuple(a + b for a, b in zip(self.latency, other.latency, strict=True))
        return Counts(self.attempts + other.attempts, self.failed + other.failed, latency)

    @property
    def failure_ratio(self) -> float:
        return self.failed / self.attempts if self.attempts else 0.0

    def median_ms(self) -> float | None:
        """The median duration, interpolated linearly inside its bucket; the open last
        bucket gives its lower edge. None without attempts."""
        if not self.attempts:
            return None
        rank = self.attempts / 2
        seen = 0
        for i, count in enumerate(self.latency):
            if count and seen + count >= rank:
                if i == len(LATENCY_EDGES_MS):
                    return float(LATENCY_EDGES_MS[-1])
                low = 0.0 if i == 0 else float(LATENCY_EDGES_MS[i - 1])
                return low + (LATENCY_EDGES_MS[i] - low) * (rank - seen) / count
            seen += count
        return float(LATENCY_EDGES_MS[-1])


@dataclass(frozen=True, slots=True)
class Point:
    """One endpoint's rollup row, as detection reads it (``Store.rollup_points``)."""

    endpoint_id: str
    app_id: str
    start: datetime
    counts: Counts


@dataclass(frozen=True, slots=True)
class Subject:
    """What is judged: an enabled endpoint, or an application with several of them."""

    app_id: str
    endpoint_id: str | None
    """None for an application."""
    since: datetime
    """When it began: its history before then is absence, not silence."""

    @property
    def key(self) -> str:
        return self.endpoint_id or self.app_id


def applications(endpoints: Iterable[Subject]) -> list[Subject]:
    """The applications judged as a whole: those with several enabled endpoints (one
    endpoint's application says what the endpoint says), each since its oldest one."""
    since: dict[str, list[datetime]] = {}
    for endpoint in endpoints:
        since.setdefault(endpoint.app_id, []).append(endpoint.since)
    return [Subject(app_id, None, min(s)) for app_id, s in since.items() if len(s) > 1]


def by_subject(points: Iterable[Point]) -> dict[str, dict[datetime, Counts]]:
    """Rows by subject key and start: each endpoint's own, and every application's summed
    over the endpoints given (those judged: a disabled or muted endpoint's past traffic is
    not expected of the application now)."""
    found: dict[str, dict[datetime, Counts]] = {}
    for point in points:
        for key in (point.endpoint_id, point.app_id):
            starts = found.setdefault(key, {})
            held = starts.get(point.start)
            starts[point.start] = point.counts if held is None else held + point.counts
    return found


@dataclass(frozen=True, slots=True)
class Spread:
    """A robust centre and spread: the median, and the median absolute deviation times 1.4826."""

    centre: float
    spread: float


def spread_of(values: Sequence[float]) -> Spread:
    centre = median(values)
    deviation = median(abs(value - centre) for value in values)
    return Spread(centre, MAD_TO_SD * deviation)


@dataclass(frozen=True, slots=True)
class Baseline:
    """A subject's usual figures; a figure without enough samples is None."""

    volume: Spread | None
    """Attempts per minute."""
    volume_basis: str
    """``daily`` (the same hour on past days) or ``recent`` (the last hours)."""
    failure: Spread | None
    latency: Spread | None


def hour_start(at: datetime) -> datetime:
    return floor_to(at, HOUR_SECONDS)


def recent_hours(now: datetime) -> list[datetime]:
    """The complete hours before ``now``'s, newest first."""
    hour = hour_start(now)
    return [hour - timedelta(hours=h) for h in range(1, RECENT_HOURS + 1)]


def seasonal_hours(now: datetime) -> list[datetime]:
    """The hours of past days that began at ``now``'s hour of the day, newest first."""
    hour = hour_start(now)
    return [hour - timedelta(days=d) for d in range(1, SEASONAL_DAYS + 1)]


def baseline_hours(now: datetime) -> list[datetime]:
    """Every hour row a baseline at ``now`` may read."""
    return sorted(set(recent_hours(now)) | set(seasonal_hours(now)))


def window_minutes(now: datetime) -> list[datetime]:
    """The starts of the complete minutes judged at ``now``, oldest first."""
    minute = floor_to(now, MINUTE_SECONDS)
    return [minute - timedelta(minutes=m) for m in range(WINDOW_MINUTES, 0, -1)]


def baseline(subject: Subject, hours: Mapping[datetime, Counts], now: datetime) -> Baseline:
    """The subject's baseline at ``now`` from its hour rows (an hour without a row after the
    subject began made no attempts)."""
    recent = [hours.get(h, Counts()) for h in recent_hours(now) if h >= subject.since]
    seasonal = [hours.get(h, Counts()) for h in seasonal_hours(now) if h >= subject.since]
    volume_basis, volume_hours = RECENT, recent
    if len(seasonal) >= MIN_SEASONAL_DAYS:
        volume_basis, volume_hours = DAILY, seasonal
    volume = None
    if len(recent) >= MIN_BASELINE_HOURS:
        volume = spread_of([c.attempts / 60 for c in volume_hours])
    busy = [c for c in recent if c.attempts >= MIN_HOUR_ATTEMPTS]
    failure = latency = None
    if len(busy) >= MIN_BASELINE_HOURS:
        failure = spread_of([c.failure_ratio for c in busy])
        latency = spread_of([c.median_ms() or 0.0 for c in busy])
    return Baseline(volume, volume_basis, failure, latency)


@dataclass(frozen=True, slots=True)
class Finding:
    """A rule that holds: what was seen against what was expected (``UNITS``)."""

    kind: str
    observed: float
    expected: float
    basis: str


def judge(window: Counts, usual: Baseline) -> list[Finding]:
    """Which rules hold for the last ``WINDOW_MINUTES`` of a subject with this baseline."""
    found: list[Finding] = []
    failure = usual.failure
    n = window.attempts
    if failure is not None and n >= MIN_FAILURE_ATTEMPTS:
        usual_ratio = failure.centre
        seen = window.failure_ratio
        noise = math.sqrt(failure.spread**2 + usual_ratio * (1 - usual_ratio) / n)
        if seen - usual_ratio >= max(MIN_FAILURE_EXCESS, SIGNIFICANCE * noise):
            found.append(Finding(FAILURE_SPIKE, seen, usual_ratio, RECENT))
    latency = usual.latency
    seen_ms = window.median_ms()
    if latency is not None and seen_ms is not None and n >= MIN_LATENCY_ATTEMPTS:
        usual_ms = latency.centre
        floor = max(MIN_LATENCY_SHIFT_MS, usual_ms * (LATENCY_RATIO - 1))
        if seen_ms - usual_ms >= max(floor, SIGNIFICANCE * latency.spread):
            found.append(Finding(LATENCY_SHIFT, seen_ms, usual_ms, RECENT))
    volume = usual.volume
    if volume is not None:
        expected = volume.centre * WINDOW_MINUTES
        if expected >= MIN_EXPECTED_ATTEMPTS:
            noise = math.sqrt(expected + (volume.spread * WINDOW_MINUTES) ** 2)
            if n <= expected * DROP_FRACTION and expected - n >= SIGNIFICANCE * noise:
                rate = n / WINDOW_MINUTES
                found.append(Finding(VOLUME_DROP, rate, volume.centre, usual.volume_basis))
    return found


@dataclass(frozen=True, slots=True)
class Anomaly:
    """An anomaly as stored: open until ``resolved_at``. At most one open per subject and
    kind, which the store enforces, so several workers judging the same rows report it once."""

    id: str
    kind: str
    app_id: str
    endpoint_id: str | None
    detected_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    observed: float
    expected: float
    basis: str

    @property
    def scope(self) -> str:
        return APPLICATION if self.endpoint_id is None else ENDPOINT

    @property
    def subject_key(self) -> str:
        return self.endpoint_id or self.app_id

    @property
    def unit(self) -> str:
        return UNITS[self.kind]


def quiet_long_enough(anomaly: Anomaly, now: datetime) -> bool:
    """Whether an open anomaly whose rule no longer holds ends now: it has not held for
    ``RESOLVE_AFTER``, so the window no longer holds the anomalous minutes."""
    return now - anomaly.last_seen_at >= RESOLVE_AFTER


def describe(anomaly: Anomaly) -> str:
    """The anomaly in words, for logs and the operational webhook."""
    scope = f"endpoint {anomaly.endpoint_id}" if anomaly.endpoint_id else "application"
    subject = f"{scope} of {anomaly.app_id}" if anomaly.endpoint_id else f"{scope} {anomaly.app_id}"
    usual = "at this hour on past days" if anomaly.basis == DAILY else "over the last day"
    minutes = WINDOW_MINUTES
    match anomaly.kind:
        case "failure_spike":
            return (
                f"{anomaly.observed:.0%} of the attempts to {subject} failed in the last "
                f"{minutes} minutes, against {anomaly.expected:.0%} usually"
            )
        case "latency_shift":
            return (
                f"the median attempt to {subject} took {anomaly.observed:.0f} ms in the last "
                f"{minutes} minutes, against {anomaly.expected:.0f} ms usually"
            )
        case _:
            return (
                f"{subject} made {anomaly.observed:.1f} attempts a minute in the last "
                f"{minutes} minutes, against {anomaly.expected:.1f} {usual}"
            )


@dataclass(slots=True)
class Judgement:
    """One evaluation's result for the store and the events: what to open, which open
    anomalies still hold (their ``last_seen_at`` moves) and which end."""

    opened: list[tuple[Subject, Finding]] = field(default_factory=list)
    seen: list[tuple[Anomaly, Finding]] = field(default_factory=list)
    resolved: list[Anomaly] = field(default_factory=list)


@dataclass(slots=True)
class Findings:
    """What the rules found so far, subject by subject: a pass adds its subjects a batch at
    a time (``add``), then settles them with the open anomalies (``reconcile``)."""

    holding: dict[tuple[str, str], tuple[Subject, Finding]] = field(default_factory=dict)
    judged: set[str] = field(default_factory=set)

    def add(
        self,
        subjects: Iterable[Subject],
        windows: Mapping[str, Counts],
        baselines: Mapping[str, Baseline],
    ) -> None:
        """Judge each subject that has a baseline (by ``Subject.key``); one without is not
        judged at all."""
        for subject in subjects:
            usual = baselines.get(subject.key)
            if usual is None:
                continue
            self.judged.add(subject.key)
            for finding in judge(windows.get(subject.key, Counts()), usual):
                self.holding[(subject.key, finding.kind)] = (subject, finding)

    def reconcile(self, open_anomalies: Iterable[Anomaly], now: datetime) -> Judgement:
        """A finding with no open anomaly opens one, an open anomaly whose rule holds is
        seen again, and one whose rule stopped holding for ``RESOLVE_AFTER``, or whose
        subject is no longer judged (deleted, disabled, too little history), ends."""
        result = Judgement()
        holding = dict(self.holding)
        for anomaly in open_anomalies:
            key = (anomaly.subject_key, anomaly.kind)
            found = holding.pop(key, None)
            if found is not None:
                result.seen.append((anomaly, found[1]))
            elif anomaly.subject_key not in self.judged or quiet_long_enough(anomaly, now):
                result.resolved.append(anomaly)
        result.opened = list(holding.values())
        return result


def batches(endpoints: Iterable[Subject], size: int) -> list[list[Subject]]:
    """Endpoints in batches of about ``size``, each holding whole applications (an
    application is judged from all its endpoints' rows), so that a pass can read and judge
    a batch at a time and let other work run between."""
    by_app: dict[str, list[Subject]] = {}
    for endpoint in endpoints:
        by_app.setdefault(endpoint.app_id, []).append(endpoint)
    out: list[list[Subject]] = [[]]
    for group in by_app.values():
        if out[-1] and len(out[-1]) + len(group) > size:
            out.append([])
        out[-1].extend(group)
    return [batch for batch in out if batch]


def window_span(now: datetime) -> tuple[datetime, datetime]:
    """The window judged at ``now`` as [start, end): its complete minutes."""
    minutes = window_minutes(now)
    return minutes[0], minutes[-1] + timedelta(minutes=1)
