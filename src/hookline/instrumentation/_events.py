"""What can happen, as values: one class per kind of event.

Fields are what a consumer needs to count, log or forward the event without reading the
store again. Identifiers are included for logs and operational webhooks; a metrics consumer
must not turn them into labels (issue 15: labels are bounded enums).

Events are values that consumers read and never change, but they are not ``frozen=True``:
a frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``, which made
building an ``AttemptFinished`` cost 3 to 4 times a plain one, and with metrics on one is
built per attempt (``docs/performance-decisions.md``). Emitters on the per-delivery paths
build them with positional arguments for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from hookline.domain.anomaly import Anomaly
from hookline.domain.backlog import BacklogState
from hookline.domain.failure_groups import FailureGroup


@dataclass(slots=True)
class RequestServed:
    """The API answered a request."""

    method: str
    route: str
    """The route's path template (``/api/v1/app/{app_id}/msg``), never the raw path."""
    status: int
    duration_s: float


@dataclass(slots=True)
class MessageAccepted:
    """A message and its delivery rows were committed (the 202 may now be sent)."""

    app_id: str
    msg_id: str
    event_type: str
    payload_bytes: int
    deliveries: int


@dataclass(slots=True)
class AttemptFinished:
    """One delivery attempt ended, with an HTTP answer or without one (status 0)."""

    app_id: str
    msg_id: str
    endpoint_id: str
    attempt_id: str
    status_code: int
    error: str | None
    duration_ms: int
    attempt_number: int
    """1 for the first scheduled attempt; manual resends count where they fall."""
    manual: bool
    outcome: str
    """What the attempt did to its delivery: ``success``, ``retry``, ``fail`` or ``gone``."""
    started_at: datetime
    msg_event_id: str | None = None
    """The message's ``eventId`` (the producer's own id), for operational webhooks."""
    msg_created_at: datetime | None = None
    """When the message was accepted, for the end-to-end latency of its first success."""
    msg_due_at: datetime | None = None
    """When the message fell due (its creation, or its ``deliverAt``): a first attempt's
    lag is the time from then to ``started_at``."""


@dataclass(slots=True)
class AttemptMilestone:
    """An attempt that operators are told of (Svix's operational ``message.attempt.*``): a
    delivery's fourth failure, its last, or its success after that. Most attempts are none
    of these, so a hook that wants only these is not handed an event per attempt."""

    kind: str
    """The operational event type (``domain/operational.py``)."""
    app_id: str
    msg_id: str
    msg_event_id: str | None
    endpoint_id: str
    attempt_id: str
    status_code: int
    started_at: datetime


@dataclass(slots=True)
class DeliveryExhausted:
    """A delivery failed its last scheduled attempt and will not be retried by itself."""

    app_id: str
    msg_id: str
    endpoint_id: str
    attempts: int


@dataclass(slots=True)
class EndpointCreated:
    """An endpoint was created."""

    app_id: str
    endpoint_id: str
    endpoint_uid: str | None


@dataclass(slots=True)
class EndpointUpdated:
    """An endpoint was changed (its fields, headers or secret)."""

    app_id: str
    endpoint_id: str
    endpoint_uid: str | None


@dataclass(slots=True)
class EndpointDeleted:
    """An endpoint was deleted."""

    app_id: str
    endpoint_id: str
    endpoint_uid: str | None


@dataclass(slots=True)
class EndpointDisabled:
    """An endpoint stopped receiving deliveries: it answered 410 Gone, failed for the whole
    auto-disable period, or someone disabled it."""

    app_id: str
    endpoint_id: str
    reason: str
    trigger: str = "automatic"
    """Svix's ``trigger``: ``automatic`` (hookline decided) or ``manual`` (an update)."""
    fail_since: datetime | None = None
    """Since when every attempt failed, for an auto-disable."""
    endpoint_uid: str | None = None


@dataclass(slots=True)
class EndpointFailing:
    """An endpoint has failed for a share of the auto-disable period (a warning)."""

    app_id: str
    endpoint_id: str
    endpoint_uid: str | None
    fail_since: datetime
    disable_at: datetime


@dataclass(slots=True)
class EndpointRecovered:
    """An endpoint that was failing answered again: its failing period (auto-disable's)
    ended. Told once per period, whichever worker saw the success."""

    app_id: str
    endpoint_id: str
    failing_since: datetime
    recovered_at: datetime


@dataclass(slots=True)
class EndpointEnabled:
    """A disabled endpoint was enabled again."""

    app_id: str
    endpoint_id: str
    endpoint_uid: str | None = None


@dataclass(slots=True)
class BreakerOpened:
    """An endpoint's circuit breaker opened (or re-opened after a failed probe)."""

    endpoint_id: str
    failures: int
    """Failures in a row when it opened."""
    cooldown_s: float
    app_id: str = ""
    reason: str = "consecutiveFailures"
    """The rule that opened it: ``consecutiveFailures``, ``failureRatio`` or ``throttled``."""
    failure_ratio: float | None = None
    """Failed share of the attempts in the breaker's window when it opened."""
    endpoint_uid: str | None = None
    reopened: bool = False
    """It re-opened after a failed probe: the circuit was not closed in between."""
    probe_at: datetime | None = None
    """When the cooldown ends and one probe may go."""


@dataclass(slots=True)
class BreakerClosed:
    """An endpoint answered again and its circuit breaker closed."""

    endpoint_id: str
    app_id: str = ""
    endpoint_uid: str | None = None


@dataclass(slots=True)
class DeliveryHeld:
    """A leased delivery was put back unattempted (or given to its fallback destination)
    because its endpoint's circuit breaker is open."""

    app_id: str
    endpoint_id: str


@dataclass(slots=True)
class BacklogSampled:
    """A process read the queue's backlog (``operations/backlog.py``), which it does every
    ``HOOKLINE_BACKLOG_SAMPLE_INTERVAL`` seconds."""

    state: BacklogState


@dataclass(slots=True)
class BatchCommitted:
    """A batch writer committed one transaction of publishes and attempt records.

    It also says what the transaction accepted, so that a consumer counting messages needs
    one event per batch instead of a ``MessageAccepted`` per message (the metrics' cost,
    docs/performance-decisions.md)."""

    backend: str
    publishes: int
    messages: int
    records: int
    duration_s: float
    accepted: int = 0
    """Messages committed: those of publishes refused whole (an idempotency conflict) are
    in ``messages`` but not here."""
    deliveries: int = 0
    """Delivery rows the accepted messages created."""
    payload_bytes: tuple[int, ...] = ()
    """The size of each accepted message's payload (0 once expunged, or for none)."""


@dataclass(slots=True)
class ConnectionOpened:
    """The transport opened a new connection to a vetted address (pooled ones are reused)."""

    scheme: str
    duration_s: float


@dataclass(slots=True)
class BackgroundTaskFinished:
    """A background task (recover, replay, bulk replay, redrive) ended: finished, failed or
    canceled. ``status`` and ``task`` are the Svix wire values; ``data`` is its progress."""

    task_id: str
    app_id: str | None
    task: str
    status: str
    data: dict[str, object]


@dataclass(slots=True)
class AnomalyDetected:
    """The anomaly detector opened an anomaly (``operations/anomalies.py``). Of several
    workers judging the same rollups, only the one whose write opened it emits this."""

    anomaly: Anomaly

    @property
    def app_id(self) -> str:
        return self.anomaly.app_id


@dataclass(slots=True)
class AnomalyResolved:
    """An open anomaly ended; emitted by the one worker whose write ended it."""

    anomaly: Anomaly

    @property
    def app_id(self) -> str:
        return self.anomaly.app_id


@dataclass(slots=True)
class AnomaliesEvaluated:
    """A detector pass ended: the anomalies open after it, by kind (every kind present)."""

    open_by_kind: dict[str, int]


@dataclass(slots=True)
class FailureGroupOpened:
    """A grouping pass opened a failure group, or reopened a resolved one (``reopened``
    counts how often); emitted by the one process whose pass counted the failures."""

    group: FailureGroup

    @property
    def app_id(self) -> str:
        return self.group.app_id


Event = (
    RequestServed
    | MessageAccepted
    | AttemptFinished
    | AttemptMilestone
    | DeliveryExhausted
    | DeliveryHeld
    | BacklogSampled
    | AnomalyDetected
    | AnomalyResolved
    | AnomaliesEvaluated
    | EndpointCreated
    | EndpointUpdated
    | EndpointDeleted
    | EndpointDisabled
    | EndpointFailing
    | EndpointEnabled
    | EndpointRecovered
    | BackgroundTaskFinished
    | BreakerOpened
    | BreakerClosed
    | BatchCommitted
    | ConnectionOpened
    | FailureGroupOpened
)
