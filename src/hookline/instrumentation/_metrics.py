"""``MetricsHook``: hookline's Prometheus metrics, counted from instrumentation events.

Events are counted into plain numbers held by the hook, so the hot path pays a dictionary
or list update per figure and no lock. Every process writes its numbers, about once a
second and before each scrape, into its own file in a directory shared by the processes
of one ``serve`` tree, in prometheus-client's multiprocess format (``MmapedDict``); a scrape
merges every file with prometheus-client's ``MultiProcessCollector``, so the counters of
``serve --processes N`` appear summed whichever process answers. Files of processes that
exited stay: their counts were real (Prometheus sees a counter reset otherwise).

Labels are bounded enums only: never an application, endpoint or message id (issue 15).
"""

from __future__ import annotations

import asyncio
import contextlib
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
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from hookline.instrumentation._events import (
    AttemptFinished,
    BatchCommitted,
    BreakerOpened,
    DeliveryExhausted,
    EndpointDisabled,
    Event,
    MessageAccepted,
    RequestServed,
)

FLUSH_INTERVAL_SECONDS = 1.0
"""How often a process writes its numbers for the others' scrapes; a scrape writes its own
process's first, so only the other processes' figures can be this much behind."""

OUTCOMES = ("2xx", "3xx", "4xx", "5xx", "timeout", "connection", "dns", "tls", "ssrf_blocked")
OTHER = "other"
"""An attempt that ended none of those ways (an invalid URL, an expunged payload, a 1xx)."""

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
"""A request's method is the client's to choose: any other is counted as ``other``."""
_STATUS_CLASSES = {1: OTHER, 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
# The reasons the transport gives when there is no HTTP answer (hookline.transport).
_REASON_PREFIXES = (
    ("timeout", "timeout"),
    ("DNS", "dns"),
    ("TLS", "tls"),
    ("connection", "connection"),
    ("server disconnected", "connection"),
    ("blocked by", "ssrf_blocked"),
    ("refused: only https", "ssrf_blocked"),
    ("invalid URL: ", "ssrf_blocked"),
)

LATENCY_BUCKETS_SECONDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1)
LATENCY_BUCKETS_SECONDS += (2.5, 5, 10, 30, 60, 300, 1800, 3600, 21600, 86400)
"""End to end includes retries, so it reaches hours and a day."""
DURATION_BUCKETS_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30)
COMMIT_BUCKETS_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
PAYLOAD_BUCKETS_BYTES = (128, 512, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)


def attempt_outcome(status_code: int, error: str | None) -> str:
    """The bounded label of an attempt's end: the status class, or why there was no answer."""
    if status_code:
        return _STATUS_CLASSES.get(status_code // 100, OTHER)
    if error:
        for prefix, outcome in _REASON_PREFIXES:
            if error.startswith(prefix):
                return outcome
    return OTHER


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
    name: str
    help: str
    labels: tuple[str, ...] = ()


ACCEPTED = _Spec("hookline_messages_accepted", "Messages committed by the API")
DELIVERIES = _Spec("hookline_deliveries_created", "Delivery rows created by accepted messages")
ATTEMPTS = _Spec("hookline_attempts", "Delivery attempts by how they ended", ("outcome",))
ATTEMPT_SECONDS = _Spec("hookline_attempt_duration_seconds", "Duration of delivery attempts")
E2E_SECONDS = _Spec(
    "hookline_delivery_latency_seconds", "From a message's creation to its delivery's 2xx"
)
EXHAUSTED = _Spec("hookline_deliveries_exhausted", "Deliveries that failed their last attempt")
BREAKERS = _Spec("hookline_breakers_opened", "Circuit breakers opened", ("reason",))
DISABLED = _Spec("hookline_endpoints_disabled", "Endpoints disabled", ("trigger",))
REQUESTS = _Spec(
    "hookline_api_requests",
    "API requests by route template and status class",
    ("method", "route", "status"),
)
COMMIT_SECONDS = _Spec("hookline_store_commit_seconds", "Duration of batch commits", ("backend",))
BATCH_SIZE = _Spec(
    "hookline_store_batch_size", "Publishes and attempt records per commit", ("backend",)
)
PAYLOAD_BYTES = _Spec("hookline_message_payload_bytes", "Size of accepted message payloads")
BUILD_INFO = "hookline_build_info"

EXPORTED_FAMILIES: dict[str, str] = {
    ACCEPTED.name: "counter",
    DELIVERIES.name: "counter",
    PAYLOAD_BYTES.name: "histogram",
    ATTEMPTS.name: "counter",
    ATTEMPT_SECONDS.name: "histogram",
    E2E_SECONDS.name: "histogram",
    EXHAUSTED.name: "counter",
    BREAKERS.name: "counter",
    DISABLED.name: "counter",
    REQUESTS.name: "counter",
    COMMIT_SECONDS.name: "histogram",
    BATCH_SIZE.name: "histogram",
    BUILD_INFO: "gauge",
}
"""Every metric family a scrape can show, by name (without a counter's ``_total``), with its
Prometheus type: what the shipped alerts and dashboard (``deploy/``) may name;
``tests/unit/test_metric_families.py`` checks it against what the hook exposes."""

_ALL = frozenset(
    {RequestServed, MessageAccepted, AttemptFinished, DeliveryExhausted}
    | {BreakerOpened, EndpointDisabled, BatchCommitted}
)


class MetricsHook:
    """Counts events into numbers; ``flush`` writes them to ``directory`` for scrapes."""

    def __init__(self, directory: str, version: str) -> None:
        self.events: frozenset[type[Event]] = _ALL
        self.directory = directory
        self.version = version
        self._accepted = [0.0, 0.0]
        self._attempts = dict.fromkeys((*OUTCOMES, OTHER), 0.0)
        self._attempt_seconds = _Histogram(DURATION_BUCKETS_SECONDS)
        self._latency = _Histogram(LATENCY_BUCKETS_SECONDS)
        self._exhausted = [0.0]
        self._breakers: dict[str, float] = {}
        self._disabled: dict[str, float] = {}
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
                status = event.status_code
                outcome = _STATUS_CLASSES.get(status // 100, OTHER) if status else None
                self._attempts[outcome or attempt_outcome(status, event.error)] += 1
                self._attempt_seconds.observe(event.duration_ms / 1000)
                created = event.msg_created_at
                if created is not None and event.outcome == "success" and not event.manual:
                    self._latency.observe(max(time.time() - created.timestamp(), 0.0))
            case RequestServed():
                # Statuses are the server's own few; a method is the client's to choose.
                method = event.method if event.method in _METHODS else OTHER
                key = (method, event.route, event.status)
                self._requests[key] = self._requests.get(key, 0.0) + 1
            case MessageAccepted():
                self._accepted[0] += 1
                self._accepted[1] += event.deliveries
                self._payload.observe(event.payload_bytes)
            case BatchCommitted():
                commit = self._commit_seconds.get(event.backend)
                if commit is None:
                    commit = self._commit_seconds[event.backend] = _Histogram(
                        COMMIT_BUCKETS_SECONDS
                    )
                    self._batch_size[event.backend] = _Histogram(BATCH_BUCKETS)
                commit.observe(event.duration_s)
                self._batch_size[event.backend].observe(event.publishes + event.records)
            case DeliveryExhausted():
                self._exhausted[0] += 1
            case BreakerOpened():
                self._breakers[event.reason] = self._breakers.get(event.reason, 0.0) + 1
            case EndpointDisabled():
                self._disabled[event.trigger] = self._disabled.get(event.trigger, 0.0) + 1

    def samples(self) -> Iterator[tuple[str, _Spec, str, tuple[str, ...], float]]:
        """Every figure as (type, metric, sample name, label values, value)."""
        yield from _counter(ACCEPTED, (), self._accepted[0])
        yield from _counter(DELIVERIES, (), self._accepted[1])
        for outcome, count in self._attempts.items():
            yield from _counter(ATTEMPTS, (outcome,), count)
        yield from _histogram(ATTEMPT_SECONDS, (), self._attempt_seconds)
        yield from _histogram(E2E_SECONDS, (), self._latency)
        yield from _counter(EXHAUSTED, (), self._exhausted[0])
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

    def flush(self) -> None:
        """Write this process's numbers to its files in ``directory``."""
        with self._lock:
            for typ, spec, name, values, value in self.samples():
                file = self._files.get(typ)
                if file is None:
                    path = os.path.join(self.directory, f"{typ}_{self._token}.db")
                    file = self._files[typ] = MmapedDict(path)  # type: ignore[no-untyped-call]
                key = self._keys.get((name, values))
                if key is None:
                    labels = (*spec.labels, "le") if len(values) > len(spec.labels) else spec.labels
                    key = mmap_key(spec.name, name, list(labels), list(values), spec.help)
                    self._keys[(name, values)] = key
                file.write_value(key, value, 0.0)  # type: ignore[no-untyped-call]

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
        build = GaugeMetricFamily(BUILD_INFO, "The running hookline's version", labels=["version"])
        build.add_metric([self._hook.version], 1.0)
        yield build
        merged = MultiProcessCollector(None, self._hook.directory)  # type: ignore[no-untyped-call]
        yield from merged.collect()  # type: ignore[no-untyped-call]


def _counter(
    spec: _Spec, values: tuple[str, ...], value: float
) -> Iterator[tuple[str, _Spec, str, tuple[str, ...], float]]:
    yield "counter", spec, spec.name + "_total", values, value


def _histogram(
    spec: _Spec, values: tuple[str, ...], histogram: _Histogram
) -> Iterator[tuple[str, _Spec, str, tuple[str, ...], float]]:
    yield "histogram", spec, spec.name + "_sum", values, histogram.total
    bounds = (*histogram.bounds, float("inf"))
    for bound, count in zip(bounds, histogram.counts, strict=True):
        yield "histogram", spec, spec.name + "_bucket", (*values, _go_float(bound)), count


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
    """Bookkeeping when a process of the tree exits: its live gauges go, its counters stay."""
    mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def _go_float(bound: float) -> str:
    """A bucket's bound as prometheus-client writes ``le`` (``+Inf``, ``1.0``)."""
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]
