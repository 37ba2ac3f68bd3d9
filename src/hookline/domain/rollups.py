"""Per-endpoint attempt rollups: the rules that turn attempts into a few rows per period.

A statistics answer over 30 days must not read millions of attempts (issue 15), so every
batch of attempt records also adds its attempts to one row per (endpoint, minute) and one
per (endpoint, hour). A row holds counts only: attempts by outcome, attempt durations as
counts per fixed bucket, and payload bytes with the number of attempts that carried one.
Counts add, so rows written by different batches, workers or processes merge by addition
(an upsert adds), and a percentile over any window is read off the summed buckets.

The outcome classes are the ones the Prometheus metrics count (docs/observability.md):
the status class of the answer, or why there was none.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookline.domain.models import Attempt

MINUTE_SECONDS = 60
HOUR_SECONDS = 3600
PERIODS_SECONDS = (MINUTE_SECONDS, HOUR_SECONDS)
"""The two row sizes; a row's ``period`` column holds one of them."""

MINUTE_ROLLUP_HOURS = 48
"""How long minute rows are kept (retention prunes them sooner than hour rows): a chart of
the last day or two is drawn per minute; hour rows live as long as attempts do."""

OUTCOMES = ("2xx", "3xx", "4xx", "5xx", "timeout", "connection", "dns", "tls", "ssrf_blocked")
OTHER = "other"
"""An attempt that ended none of those ways (an invalid URL, an expunged payload, a 1xx)."""
STATUS_CLASSES = {1: OTHER, 2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}
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

LATENCY_EDGES_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 15000)
"""The upper bounds (inclusive) of the duration buckets; one more bucket holds the rest.
These are the one statement of the edges: the columns ``latency_0`` … ``latency_11`` of
``endpoint_rollups`` hold the counts, in this order. Changing them changes the meaning of
stored rows: add a migration, never edit in place."""

OUTCOME_COLUMNS = {
    "2xx": "success",
    "3xx": "status_3xx",
    "4xx": "status_4xx",
    "5xx": "status_5xx",
    "timeout": "timeout",
    "connection": "connection",
    "dns": "dns",
    "tls": "tls",
    "ssrf_blocked": "ssrf_blocked",
    OTHER: "other",
}
LATENCY_COLUMNS = tuple(f"latency_{i}" for i in range(len(LATENCY_EDGES_MS) + 1))
COUNT_COLUMNS = (
    "attempts",
    *OUTCOME_COLUMNS.values(),
    *LATENCY_COLUMNS,
    "duration_ms",
    "payload_bytes",
    "payloads",
)
"""Every column of a rollup row that adds; ``duration_ms`` is the sum of durations,
``payloads`` the number of attempts whose payload was still held (its bytes are in
``payload_bytes``)."""
KEY_COLUMNS = ("endpoint_id", "period", "start_at", "app_id")
COLUMNS = (*KEY_COLUMNS, *COUNT_COLUMNS)

_INDEX = {name: i for i, name in enumerate(COUNT_COLUMNS)}
_OUTCOME_INDEX = {outcome: _INDEX[column] for outcome, column in OUTCOME_COLUMNS.items()}
_LATENCY_AT = _INDEX[LATENCY_COLUMNS[0]]
_DURATION_AT = _INDEX["duration_ms"]
_BYTES_AT = _INDEX["payload_bytes"]
_PAYLOADS_AT = _INDEX["payloads"]


def outcome_class(status_code: int, error: str | None) -> str:
    """The bounded class of an attempt's end: the status class, or why there was no answer."""
    if status_code:
        return STATUS_CLASSES.get(status_code // 100, OTHER)
    if error:
        for prefix, outcome in _REASON_PREFIXES:
            if error.startswith(prefix):
                return outcome
    return OTHER


def latency_bucket(duration_ms: int) -> int:
    """The index of the bucket a duration falls in (edges inclusive, as Prometheus' ``le``)."""
    return bisect_left(LATENCY_EDGES_MS, duration_ms)


class RollupBatch:
    """The rows one batch of attempt records adds to: one per (endpoint, period, start), so a
    batch writes one upsert per endpoint and minute and one per endpoint and hour, however
    many attempts it holds."""

    __slots__ = ("_rows",)

    def __init__(self) -> None:
        self._rows: dict[tuple[str, int, int], tuple[str, list[int]]] = {}

    def add(self, attempt: Attempt, payload_bytes: int | None) -> None:
        """Count one attempt; ``payload_bytes`` is None when its payload was expunged."""
        error = attempt.response if not attempt.response_status_code else None
        outcome = _OUTCOME_INDEX[outcome_class(attempt.response_status_code, error)]
        duration = attempt.response_duration_ms
        latency = _LATENCY_AT + bisect_left(LATENCY_EDGES_MS, duration)
        at_ms = int(attempt.timestamp.timestamp() * 1000)
        for period in PERIODS_SECONDS:
            width = period * 1000
            key = (attempt.endpoint_id, period, at_ms - at_ms % width)
            row = self._rows.get(key)
            if row is None:
                row = self._rows[key] = (attempt.app_id, [0] * len(COUNT_COLUMNS))
            counts = row[1]
            counts[0] += 1
            counts[outcome] += 1
            counts[latency] += 1
            counts[_DURATION_AT] += duration
            if payload_bytes is not None:
                counts[_BYTES_AT] += payload_bytes
                counts[_PAYLOADS_AT] += 1

    def __len__(self) -> int:
        return len(self._rows)

    def rows(self) -> list[dict[str, int | str]]:
        """The upsert parameters, one mapping of ``COLUMNS`` per row."""
        out: list[dict[str, int | str]] = []
        for (endpoint_id, period, start_at), (app_id, counts) in self._rows.items():
            row: dict[str, int | str] = dict(zip(COUNT_COLUMNS, counts, strict=True))
            row.update(endpoint_id=endpoint_id, period=period, start_at=start_at, app_id=app_id)
            out.append(row)
        return out


@dataclass(frozen=True, slots=True)
class Rollup:
    """One stored row: the counts of an endpoint's attempts that started in
    [``start``, ``start`` + ``period_seconds``)."""

    start: datetime
    period_seconds: int
    counts: tuple[int, ...]
    """In ``COUNT_COLUMNS`` order."""

    def count(self, column: str) -> int:
        return self.counts[_INDEX[column]]


@dataclass(frozen=True, slots=True)
class RollupSummary:
    """Rollup rows added up over a window."""

    counts: tuple[int, ...]

    def count(self, column: str) -> int:
        return self.counts[_INDEX[column]]

    @property
    def attempts(self) -> int:
        return self.count("attempts")

    @property
    def succeeded(self) -> int:
        return self.count("success")

    @property
    def failed(self) -> int:
        """Every attempt that did not get a 2xx."""
        return self.attempts - self.succeeded

    def by_outcome(self) -> dict[str, int]:
        return {outcome: self.count(column) for outcome, column in OUTCOME_COLUMNS.items()}

    def latency_percentile_ms(self, fraction: float) -> int | None:
        """The upper edge of the bucket holding the ``fraction`` quantile of durations (an
        upper bound, as bucketed percentiles are); None with no attempts, and for the last,
        open bucket the largest edge is a lower bound of it."""
        if not 0 < fraction <= 1:
            raise ValueError("a percentile is a fraction in (0, 1]")
        total = self.attempts
        if not total:
            return None
        rank = fraction * total
        seen = 0
        for i, column in enumerate(LATENCY_COLUMNS):
            seen += self.count(column)
            if seen >= rank:
                return LATENCY_EDGES_MS[min(i, len(LATENCY_EDGES_MS) - 1)]
        return LATENCY_EDGES_MS[-1]


def summarize(rollups: Iterable[Rollup]) -> RollupSummary:
    """Add rows up: counts add, so the buckets of the sum give the window's percentiles."""
    total = [0] * len(COUNT_COLUMNS)
    for rollup in rollups:
        for i, value in enumerate(rollup.counts):
            total[i] += value
    return RollupSummary(tuple(total))


@dataclass(frozen=True, slots=True)
class RollupWindow:
    """Which rows answer a window: their size and the range of their starts."""

    period_seconds: int
    start: datetime | None
    end: datetime | None
    """Exclusive: rows starting before it."""


def window(
    since: datetime | None,
    until: datetime | None,
    now: datetime,
    minute_hours: int = MINUTE_ROLLUP_HOURS,
) -> RollupWindow:
    """Minute rows when the whole window lies within the minutes still kept, else hour rows;
    the bounds rounded outwards to whole rows (Svix: "rounded to hour granularity"), since
    a row cannot be split."""
    kept_from = now - timedelta(hours=minute_hours)
    period = MINUTE_SECONDS if since is not None and since >= kept_from else HOUR_SECONDS
    start = floor_to(since, period) if since is not None else None
    end = None
    if until is not None:
        end = floor_to(until, period)
        if end < until:
            end += timedelta(seconds=period)
    return RollupWindow(period, start, end)


def minute_cutoff(now: datetime, horizon: timedelta) -> datetime:
    """Minute rows that started before this go: after ``MINUTE_ROLLUP_HOURS``, or with the
    retention horizon if that is shorter."""
    return now - min(horizon, timedelta(hours=MINUTE_ROLLUP_HOURS))


def floor_to(value: datetime, period_seconds: int) -> datetime:
    """The start of the row of ``period_seconds`` that ``value`` falls in."""
    seconds = int(value.timestamp())
    return datetime.fromtimestamp(seconds - seconds % period_seconds, UTC)


@dataclass(frozen=True, slots=True)
class EndpointShare:
    """One endpoint's attempts and successes over a window, summed from its rollups: a row
    of the console's "hurting now" (``Store.worst_endpoints``)."""

    app_id: str
    endpoint_id: str
    attempts: int
    succeeded: int

    @property
    def failed(self) -> int:
        return self.attempts - self.succeeded

    @property
    def success_percent(self) -> float:
        return 100 * self.succeeded / self.attempts if self.attempts else 0.0
