"""``MetricsHook``: hookline's Prometheus metrics, counted from instrumentation events.

Events are counted into plain numbers held by the hook, so the hot path pays a dictionary
or list update per figure and no lock. Every process writes its numbers, about once a
second and before each scrape, into its own file in a directory shared by the processes
of one ``serve`` tree, in prometheus-client's multiprocess format (``MmapedDict``); a scrape
merges every file with prometheus-client's ``MultiProcessCollector``, so the counters of
``serve --processes N`` appear summed whichever process answers. Files of processes that
exited stay: their counts were real (Prometheus sees a counter reset otherwise).

Labels are bounded enums only: never an endpoint or message id, and an application only
when the operator names it (``HOOKLINE_METRICS_APPLICATIONS``, at most a hundred: issue 15's
opt-in), under the name the operator gave.
Gauges of the queue (the due backlog, its oldest delivery, ...) come from the worker's
background sample (``BacklogSampled``), never from a query at scrape time.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import threading
import time
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hookline.domain.anomaly import KINDS as ANOMALY_KINDS
from hookline.domain.anomaly import SCOPES
from hookline.domain.breaker import Reason
from hookline.domain.rollups import OTHER, OUTCOMES, outcome_class
from hookline.instrumentation._events import (
    AnomaliesEvaluated,
    AnomalyDetected,
    AttemptFinished,
    BacklogSampled,
    BatchCommitted,
    BreakerOpened,
    DeliveryHeld,
    EndpointDisabled,
    Event,
    FailureGroupOpened,
)

FLUSH_INTERVAL_SECONDS = 1.0
"""How often a process writes its numbers for the others' scrapes; a scrape writes its own
process's first, so only the other processes' figures can be this much behind."""

METRIC_OUTCOMES = (*OUTCOMES[:4], "rate_limited", *OUTCOMES[4:], "breaker_held")
"""The ``outcome`` label of attempts: the rollups' classes (``domain/rollups.py``), with a
429 answer apart from the other 4xx and the deliveries a breaker held."""
RATE_LIMITED = 429
"""Counted apart from the other 4xx: the endpoint asks to be sent less, not a failure of
the request (the breaker's ``throttled`` rule hears the same answer)."""
GIVE_UP_REASONS = {"fail": "exhausted", "gone": "gone"}
"""``AttemptFinished.outcome`` of a delivery's last attempt, and the ``reason`` label."""
DISABLE_TRIGGERS = ("automatic", "manual")
"""``EndpointDisabled.trigger``: Svix's values."""
RETRY_LABELS = (*(str(number) for number in range(2, 10)), "10+")
"""A retry's attempt number as a label: bounded, as a schedule may be long."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""A request's method is the client's to choose: any other is counted as ``other``."""

LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
LATENCY_BUCKETS_SECONDS += (2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
"""End to end includes retries, so it reaches hours and a day."""
DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
COMMIT_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PAYLOAD_BUCKETS_BYTES = (128, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
LAG_BUCKETS_SECONDS: tuple[float, ...] = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)
LAG_BUCKETS_SECONDS += (900, 3600)


def attempt_outcome(status_code: int, error: str | None) -> str:
    """The bounded label of an attempt's end: the rollups' outcome class, but ``rate_limited``
    for a 429."""
    if status_code == RATE_LIMITED:
        return "rate_limited"
    return outcome_class(status_code, error)


@dataclass(slots=True)
class _Histogram:
    """Counts per bucket (not cumulative, as prometheus-client's files keep them) and a sum."""

    bounds: tuple[float, ...]
    counts: list[float] = field(init=False)
    total: float = 0.0

    def __post_init__(self) -> None:
        self.counts = [0.0] * (len(self.bounds) + 1)

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value


@dataclass(frozen=True, slots=True)
class _Spec:
    kind: str
    """``counter``, ``histogram`` or ``gauge``, as the exposition names the type."""
    name: str
    help: str
    labels: tuple[str, ...] = ()


ACCEPTED = _Spec("counter", "hookline_messages_accepted", "Messages committed by the API")
DELIVERIES = _Spec(
    "counter", "hookline_deliveries_created", "Delivery rows created by accepted messages"
)
ATTEMPTS = _Spec(
    "counter", "hookline_attempts", "Delivery attempts by how they ended", ("outcome",)
)
ATTEMPT_SECONDS = _Spec(
    "histogram", "hookline_attempt_duration_seconds", "Duration of delivery attempts"
)
E2E_SECONDS = _Spec(
    "histogram",
    "hookline_delivery_latency_seconds",
    "From a message's creation to its delivery's 2xx",
)
LAG_SECONDS = _Spec(
    "histogram",
    "hookline_delivery_lag_seconds",
    "From a message falling due to its first attempt's start",
)
APPLICATION_ATTEMPTS = _Spec(
    "counter",
    "hookline_application_attempts",
    "Delivery attempts of the applications named in HOOKLINE_METRICS_APPLICATIONS",
    ("application", "outcome"),
)
RETRIES = _Spec("counter", "hookline_retries", "Retry attempts by attempt number", ("attempt",))
GIVEN_UP = _Spec(
    "counter", "hookline_deliveries_given_up", "Deliveries hookline stopped trying", ("reason",)
)
BREAKERS = _Spec("counter", "hookline_breakers_opened", "Circuit breakers opened", ("reason",))
DISABLED = _Spec("counter", "hookline_endpoints_disabled", "Endpoints disabled", ("trigger",))
REQUESTS = _Spec(
    "counter",
    "hookline_api_requests",
    "API requests by route template and status class",
    ("method", "route", "status"),
)
COMMIT_SECONDS = _Spec(
    "histogram", "hookline_store_commit_seconds", "Duration of batch commits", ("backend",)
)
BATCH_SIZE = _Spec(
    "histogram",
    "hookline_store_batch_size",
    "Publishes and attempt records per commit",
    ("backend",),
)
PAYLOAD_BYTES = _Spec(
    "histogram", "hookline_message_payload_bytes", "Size of accepted message payloads"
)
DUE_BACKLOG = _Spec("gauge", "hookline_due_backlog", "Deliveries due and waiting (sampled)")
OLDEST_DUE = _Spec(
    "gauge",
    "hookline_oldest_due_age_seconds",
    "How long the longest-waiting due delivery has waited (sampled)",
)
DISABLED_NOW = _Spec("gauge", "hookline_disabled_endpoints", "Endpoints disabled now (sampled)")
OPEN_BREAKERS = _Spec(
    "gauge", "hookline_open_breakers", "Endpoints whose breaker is not closed (sampled)"
)
LIVE_WORKERS = _Spec(
    "gauge", "hookline_live_workers", "Workers that heartbeated within the stall timeout"
)
SAMPLED_AT = _Spec(
    "gauge",
    "hookline_backlog_sampled_timestamp_seconds",
    "Unix time of the last backlog sample",
)
DRAIN = _Spec(
    "gauge",
    "hookline_backlog_drain_seconds",
    "Forecast seconds until the due backlog clears at its recent rate (+Inf: not shrinking)",
)
PROCESS_CPU = _Spec("counter", "hookline_process_cpu_seconds", "CPU time of the hookline processes")
PROCESS_RSS = _Spec(
    "gauge", "hookline_process_resident_memory_bytes", "Resident memory of the live processes"
)
ANOMALIES = _Spec(
    "counter",
    "hookline_anomalies_detected",
    "Anomalies opened by anomaly detection",
    ("kind", "scope"),
)
FAILURE_GROUPS = _Spec(
    "counter",
    "hookline_failure_groups_opened",
    "Failure groups opened or reopened, by the outcome class of their failures",
    ("outcome",),
)
OPEN_ANOMALIES = _Spec(
    "gauge", "hookline_open_anomalies", "Anomalies open after the last detection pass", ("kind",)
)
BUILD_INFO = _Spec("gauge", "hookline_build_info", "The running hookline's version", ("version",))

_SAMPLED = (DUE_BACKLOG, OLDEST_DUE, DISABLED_NOW, OPEN_BREAKERS, LIVE_WORKERS, SAMPLED_AT)
FAMILIES: tuple[_Spec, ...] = (
    *(ACCEPTED, DELIVERIES, ATTEMPTS, APPLICATION_ATTEMPTS, ATTEMPT_SECONDS, E2E_SECONDS),
    LAG_SECONDS,
    RETRIES,
    *(GIVEN_UP, BREAKERS, DISABLED, REQUESTS, COMMIT_SECONDS, BATCH_SIZE, PAYLOAD_BYTES),
    *(*_SAMPLED, DRAIN, PROCESS_CPU, PROCESS_RSS, ANOMALIES, OPEN_ANOMALIES, BUILD_INFO),
    FAILURE_GROUPS,
)


def exported_families() -> dict[str, str]:
    """Every metric family hookline exports, by name, with its type: what the shipped alert
    rules and dashboard may name (``deploy/``, checked by the tests)."""
    return {spec.name: spec.kind for spec in FAMILIES}


_MOSTRECENT = "gauge_livemostrecent"
"""The sampled gauges' files: of the processes' samples a scrape shows the newest, and a
process's file goes when it exits (``process_exited``)."""
_LIVESUM = "gauge_livesum"
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096

_ALL = frozenset(
    {AttemptFinished, DeliveryHeld, BacklogSampled, BreakerOpened, EndpointDisabled}
    | {BatchCommitted, AnomalyDetected, AnomaliesEvaluated, FailureGroupOpened}
)
"""Not ``RequestServed`` nor ``MessageAccepted``: the API calls ``count_request`` and the
batch writer's ``BatchCommitted`` says what each commit accepted, so a delivery's publish
builds and dispatches no event for the metrics (docs/performance-decisions.md)."""


class MetricsHook:
    """Counts events into numbers; ``flush`` writes them to ``directory`` for scrapes.

    ``applications`` are the names (ids or uids) whose attempts are also counted apart;
    the hook knows attempts by application id only, so which id each name stands for is
    told to it (``label_applications``) by whoever can read the store."""

    def __init__(self, directory: str, version: str, applications: tuple[str, ...] = ()) -> None:
        self.events: frozenset[type[Event]] = _ALL
        self.directory = directory
        self.version = version
        self.applications = applications
        self._accepted = [0.0, 0.0]
        self._attempts = dict.fromkeys((*METRIC_OUTCOMES, OTHER), 0.0)
        self._app_labels: dict[str, str] = {}
        self._app_attempts = {
            (name, outcome): 0.0 for name in applications for outcome in self._attempts
        }
        self._attempt_seconds = _Histogram(DURATION_BUCKETS_SECONDS)
        self._latency = _Histogram(LATENCY_BUCKETS_SECONDS)
        self._lag = _Histogram(LAG_BUCKETS_SECONDS)
        self._retries = dict.fromkeys(RETRY_LABELS, 0.0)
        self._given_up = dict.fromkeys(GIVE_UP_REASONS.values(), 0.0)
        self._sample: BacklogSampled | None = None
        self._anomalies = {(kind, scope): 0.0 for kind in ANOMALY_KINDS for scope in SCOPES}
        self._open_anomalies: tuple[dict[str, int], float] | None = None
        self._failure_groups = dict.fromkeys((*OUTCOMES, OTHER), 0.0)
        # Every label value from the start, so increase() sees the first event (a series
        # that appears with its first count starts at that count).
        self._breakers = dict.fromkeys((reason.value for reason in Reason), 0.0)
        self._disabled = dict.fromkeys(DISABLE_TRIGGERS, 0.0)
        self._requests: dict[tuple[str, str, int], float] = {}
        self._commit_seconds: dict[str, _Histogram] = {}
        self._batch_size: dict[str, _Histogram] = {}
        self._payload = _Histogram(PAYLOAD_BUCKETS_BYTES)
        self._files: dict[str, MmapedDict] = {}
        self._keys: dict[tuple[str, tuple[str, ...]], str] = {}
        self._token = f"{os.getpid()}_{secrets.token_hex(4)}"
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        match event:
            case AttemptFinished():
                self._attempt(event)
            case BatchCommitted():
                self._committed(event)
            case DeliveryHeld():
                self._attempts["breaker_held"] += 1
                if self._app_labels:
                    self._count_application(event.app_id, "breaker_held")
            case BacklogSampled():
                self._sample = event
            case AnomalyDetected():
                self._anomalies[(event.anomaly.kind, event.anomaly.scope)] += 1
            case FailureGroupOpened():
                outcome = event.group.outcome
                self._failure_groups[outcome if outcome in self._failure_groups else OTHER] += 1
            case AnomaliesEvaluated():
                self._open_anomalies = (event.open_by_kind, time.time())
            case BreakerOpened():
                self._breakers[event.reason] = self._breakers.get(event.reason, 0.0) + 1
            case EndpointDisabled():
                self._disabled[event.trigger] = self._disabled.get(event.trigger, 0.0) + 1

    def _committed(self, event: BatchCommitted) -> None:
        if event.accepted:
            self._accepted[0] += event.accepted
            self._accepted[1] += event.deliveries
            for size in event.payload_bytes:
                self._payload.observe(size)
        commit = self._commit_seconds.get(event.backend)
        if commit is None:
            commit = self._commit_seconds[event.backend] = _Histogram(COMMIT_BUCKETS_SECONDS)
            self._batch_size[event.backend] = _Histogram(BATCH_BUCKETS)
        commit.observe(event.duration_s)
        self._batch_size[event.backend].observe(event.publishes + event.records)

    def count_request(self, method: str, route: str, status: int) -> None:
        """One API answer, by route template (never the raw path) and status: called by the
        API itself rather than heard as an event, as it happens once per publish."""
        # Statuses are the server's own few; a method is the client's to choose.
        key = (method if method in _METHODS else OTHER, route, status)
        self._requests[key] = self._requests.get(key, 0.0) + 1

    def label_applications(self, names_by_id: dict[str, str]) -> None:
        """Which application id each of ``applications`` stands for now; an id missing
        (an application not created yet, or deleted) is counted nowhere apart."""
        self._app_labels = {
            app_id: n for app_id, n in names_by_id.items() if n in self.applications
        }

    def _count_application(self, app_id: str, outcome: str) -> None:
        name = self._app_labels.get(app_id)
        if name is not None:
            self._app_attempts[(name, outcome)] += 1

    def _attempt(self, event: AttemptFinished) -> None:
        outcome = attempt_outcome(event.status_code, event.error)
        self._attempts[outcome] += 1
        if self._app_labels:
            self._count_application(event.app_id, outcome)
        self._attempt_seconds.observe(event.duration_ms / 1000)
        if event.manual:
            return
        number = event.attempt_number
        if number == 1:
            if event.msg_due_at is not None:
                waited = (event.started_at - event.msg_due_at).total_seconds()
                self._lag.observe(max(waited, 0.0))
        else:
            self._retries[str(number) if number < 10 else "10+"] += 1
        ended = event.outcome
        if ended == "success":
            if event.msg_created_at is not None:
                since = time.time() - event.msg_created_at.timestamp()
                self._latency.observe(max(since, 0.0))
        elif ended in GIVE_UP_REASONS:
            self._given_up[GIVE_UP_REASONS[ended]] += 1

    def samples(self) -> Iterator[_Sample]:
        """Every figure as (file kind, metric, sample name, label values, value, timestamp)."""
        yield from _counter(ACCEPTED, (), self._accepted[0])
        yield from _counter(DELIVERIES, (), self._accepted[1])
        for outcome, count in self._attempts.items():
            yield from _counter(ATTEMPTS, (outcome,), count)
        for labels, count in self._app_attempts.items():
            yield from _counter(APPLICATION_ATTEMPTS, labels, count)
        yield from _histogram(ATTEMPT_SECONDS, (), self._attempt_seconds)
        yield from _histogram(E2E_SECONDS, (), self._latency)
        yield from _histogram(LAG_SECONDS, (), self._lag)
        for attempt, count in self._retries.items():
            yield from _counter(RETRIES, (attempt,), count)
        for reason, count in self._given_up.items():
            yield from _counter(GIVEN_UP, (reason,), count)
        for reason, count in list(self._breakers.items()):
            yield from _counter(BREAKERS, (reason,), count)
        for trigger, count in list(self._disabled.items()):
            yield from _counter(DISABLED, (trigger,), count)
        by_class: dict[tuple[str, str, str], float] = {}
        for (method, route, status), count in list(self._requests.items()):
            key = (method, route, f"{status // 100}xx")
            by_class[key] = by_class.get(key, 0.0) + count
        for key, count in by_class.items():
            yield from _counter(REQUESTS, key, count)
        for backend, commit in list(self._commit_seconds.items()):
            yield from _histogram(COMMIT_SECONDS, (backend,), commit)
            yield from _histogram(BATCH_SIZE, (backend,), self._batch_size[backend])
        yield from _histogram(PAYLOAD_BYTES, (), self._payload)
        yield from _counter(PROCESS_CPU, (), time.process_time())
        rss = _resident_bytes()
        if rss is not None:
            yield _LIVESUM, PROCESS_RSS, PROCESS_RSS.name, (), rss, 0.0
        for labels, count in self._anomalies.items():
            yield from _counter(ANOMALIES, labels, count)
        for outcome, count in self._failure_groups.items():
            yield from _counter(FAILURE_GROUPS, (outcome,), count)
        yield from self._sampled_gauges()

    def _sampled_gauges(self) -> Iterator[_Sample]:
        """The gauges of the background passes (backlog sample, anomaly detection), each
        stamped with when it was taken: a scrape shows the newest of the processes'."""
        evaluated = self._open_anomalies
        if evaluated is not None:
            by_kind, at = evaluated
            for kind, count in by_kind.items():
                yield _MOSTRECENT, OPEN_ANOMALIES, OPEN_ANOMALIES.name, (kind,), float(count), at
        sample = self._sample
        if sample is not None:
            state = sample.state
            at = state.sampled_at.timestamp()
            figures = (
                *(state.due, state.oldest_due_age_seconds, state.disabled_endpoints),
                *(state.open_breakers, state.live_workers, at),
            )
            for spec, value in zip(_SAMPLED, figures, strict=True):
                yield _MOSTRECENT, spec, spec.name, (), float(value), at
            if state.drain_seconds is not None:
                yield _MOSTRECENT, DRAIN, DRAIN.name, (), state.drain_seconds, at

    def flush(self) -> None:
        """Write this process's numbers to its files in ``directory``."""
        with self._lock:
            for kind, spec, name, values, value, timestamp in self.samples():
                file = self._files.get(kind)
                if file is None:
                    path = os.path.join(self.directory, f"{kind}_{self._token}.db")
                    file = self._files[kind] = MmapedDict(path)  # type: ignore[no-untyped-call]
                key = self._keys.get((name, values))
                if key is None:
                    labels = (*spec.labels, "le") if len(values) > len(spec.labels) else spec.labels
                    key = mmap_key(spec.name, name, list(labels), list(values), spec.help)
                    self._keys[(name, values)] = key
                file.write_value(key, value, timestamp)  # type: ignore[no-untyped-call]

    def close(self) -> None:
        self.flush()
        with self._lock:
            for file in self._files.values():
                file.close()  # type: ignore[no-untyped-call]
            self._files.clear()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush every ``FLUSH_INTERVAL_SECONDS`` until ``stop``, then once more."""
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), FLUSH_INTERVAL_SECONDS)
                self.flush()
        finally:
            self.close()

    def registry(self) -> CollectorRegistry:
        """What a scrape reads: every process's files (this one's written first) and the
        build's version."""
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Scrape(self))
        return registry

    def exposition(self) -> bytes:
        """The Prometheus text format of every process's figures."""
        return generate_latest(self.registry())


class _Scrape(Collector):
    def __init__(self, hook: MetricsHook) -> None:
        self._hook = hook

    def collect(self) -> Iterable[Metric]:
        self._hook.flush()
        build = GaugeMetricFamily(BUILD_INFO.name, BUILD_INFO.help, labels=list(BUILD_INFO.labels))
        build.add_metric([self._hook.version], 1.0)
        yield build
        merged = MultiProcessCollector(None, self._hook.directory)  # type: ignore[no-untyped-call]
        yield from merged.collect()  # type: ignore[no-untyped-call]


_Sample = tuple[str, _Spec, str, tuple[str, ...], float, float]


def _counter(spec: _Spec, values: tuple[str, ...], value: float) -> Iterator[_Sample]:
    yield "counter", spec, spec.name + "_total", values, value, 0.0


def _histogram(spec: _Spec, values: tuple[str, ...], histogram: _Histogram) -> Iterator[_Sample]:
    yield "histogram", spec, spec.name + "_sum", values, histogram.total, 0.0
    bounds = (*histogram.bounds, float("inf"))
    for bound, count in zip(bounds, histogram.counts, strict=True):
        yield "histogram", spec, spec.name + "_bucket", (*values, _go_float(bound)), count, 0.0


def _resident_bytes() -> float | None:
    """This process's resident memory, where ``/proc`` tells it (Linux); else None."""
    try:
        with open("/proc/self/statm", "rb") as statm:
            return float(int(statm.read().split()[1]) * _PAGE_SIZE)
    except (OSError, IndexError, ValueError):
        return None


_FILE_KINDS = ("counter_", "gauge_", "histogram_", "summary_")


def prepare_directory(directory: str) -> None:
    """Create ``directory`` or empty it of a previous run's metrics files: a new ``serve``
    tree's counters start at zero, as Prometheus expects of a restarted target.

    A scrape reads every ``*.db`` file there, so the directory must be the metrics' own:
    one holding another ``.db`` file (a SQLite database) is refused, never emptied."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    names = [name for name in os.listdir(directory) if name.endswith(".db")]
    foreign = [name for name in names if not name.startswith(_FILE_KINDS)]
    if foreign:
        raise ValueError(
            f"{directory} holds {foreign[0]}, which is not a metrics file: "
            "give the metrics a directory of their own"
        )
    for name in names:
        os.remove(os.path.join(directory, name))


def process_exited(directory: str, pid: int) -> None:
    """Bookkeeping when a process of the tree exits: its live gauges go, its counters stay.

    Files are named by pid and a random tail (a pid can come back), so this is
    prometheus-client's ``mark_process_dead`` for those names."""
    for path in glob.glob(os.path.join(directory, f"gauge_live*_{pid}_*.db")):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)


def _go_float(bound: float) -> str:
    """A bucket's bound as prometheus-client writes ``le`` (``+Inf``, ``1.0``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
