"""The storage contract every backend honours and the contract suite checks.

The store is also the queue: messages and their delivery rows are written in one
transaction, and workers lease deliveries from the same tables. Every method is a
coroutine so an API handler never blocks the event loop on I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hookline.domain.admission import AdmissionSnapshot
from hookline.domain.anomaly import Anomaly, Counts, Point, Subject
from hookline.domain.audit import AuditEntry, AuditFilter
from hookline.domain.breaker import CircuitState, ProbeGrant
from hookline.domain.failure_groups import (
    FailedAttempt,
    FailureGroup,
    GroupFilter,
    ResolvedBy,
    Sighting,
)
from hookline.domain.models import (
    AccessToken,
    Application,
    Attempt,
    ClaimedDelivery,
    Delivery,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    MessageStatus,
    Page,
)
from hookline.domain.networks import Network
from hookline.domain.policy import ApplicationPolicy
from hookline.domain.ratelimit import SlotGrant, SlotRequest, Slowdown
from hookline.domain.rollups import EndpointShare, Rollup, RollupSummary
from hookline.domain.search import DeliveryRow, DeliverySearch
from hookline.domain.tasks import BackgroundTask, DeadLetter, TaskKind, TaskRow, TaskStatus

EndpointChanged = Callable[[str, int, bool], None]
"""Told ``(endpoint_id, version, disabled)`` when an endpoint is disabled or enabled."""

MAX_LIST_LIMIT = 250
DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Cursor pagination: ``iterator`` is an item key; a leading ``-`` pages backwards."""

    limit: int = DEFAULT_LIST_LIMIT
    iterator: str | None = None
    descending: bool = False


@dataclass(frozen=True, slots=True)
class QueueHealth:
    """What readiness reports beside the database (``Store.queue_health``)."""

    live_workers: int
    """Workers whose last heartbeat is within the window asked for."""
    first_due_at: datetime | None
    """The earliest time a delivery an enabled endpoint waits for is (or was) due, among the
    rows a claim looks at first; None when nothing is pending."""


@dataclass(frozen=True, slots=True)
class BacklogSample:
    """The queue's state at one moment, for the backlog gauges (``Store.backlog_sample``)."""

    due: int
    """Deliveries of enabled endpoints due by then and not being attempted: pending, or
    leased with the lease run out. An ordered endpoint's rows count, heads or not."""
    oldest_due_at: datetime | None
    """When the longest-waiting of those fell due; None when none is."""
    live_workers: int
    disabled_endpoints: int
    open_breakers: int
    """Endpoints whose breaker is not closed (open, or half-open awaiting its probe)."""


@dataclass(frozen=True, slots=True)
class MessageFilter:
    event_types: tuple[str, ...] | None = None
    channel: str | None = None
    tag: str | None = None
    before: datetime | None = None
    after: datetime | None = None


@dataclass(frozen=True, slots=True)
class AttemptFilter:
    status: MessageStatus | None = None
    status_code_class: int | None = None
    event_types: tuple[str, ...] | None = None
    channel: str | None = None
    tag: str | None = None
    before: datetime | None = None
    after: datetime | None = None
    endpoint_id: str | None = None


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    """Which failed deliveries of an application to list; times bound their messages'."""

    endpoint_id: str | None = None
    event_types: tuple[str, ...] | None = None
    status_code_class: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class TaskCheckpoint:
    """One batch of a background task: what it read up to and what it does, written together
    and only while ``lease_token`` still holds the task at ``task.cursor``."""

    task: BackgroundTask
    lease_token: str
    cursor: str
    scanned: int
    requeue: Sequence[str]
    """Delivery ids to set pending again, as manual attempts with a fresh schedule."""
    new_deliveries: Sequence[tuple[str, str]]
    """(delivery id, message id) pairs to create for ``task.endpoint_id``."""
    finished: bool
    now: datetime
    lease_until: datetime
    expunge: Sequence[str] = ()
    """Message ids of ``task.app_id`` whose payload a content purge removes."""


@dataclass(frozen=True, slots=True)
class FallbackDelivery:
    """A new delivery of a message to an endpoint's fallback destination, standing in for
    the endpoint (``fallback_for``); written only if that destination exists and is enabled,
    and not if it already has a delivery of the message."""

    id: str
    app_id: str
    msg_id: str
    endpoint_id: str
    fallback_for: str
    now: datetime


@dataclass(frozen=True, slots=True)
class AttemptOutcome:
    """The result of one attempt and what it does to its delivery (decided in ``domain``)."""

    claimed: ClaimedDelivery
    attempt: Attempt
    delivery_status: MessageStatus
    next_attempt_at: datetime | None
    scheduled_attempts: int
    disable_endpoint: bool
    fallback: FallbackDelivery | None = None
    """The exhausted delivery's stand-in, written in the same transaction."""


@dataclass(frozen=True, slots=True)
class Diversion:
    """A leased delivery whose endpoint's circuit has been open too long, given to its
    fallback destination instead: it fails, unattempted, and ``fallback`` is written."""

    claimed: ClaimedDelivery
    fallback: FallbackDelivery
    until: datetime
    """If the fallback cannot take it (disabled or deleted), it is put back until then."""


@dataclass(frozen=True, slots=True)
class Deferral:
    """A leased delivery put back unattempted (its endpoint's breaker is open)."""

    claimed: ClaimedDelivery
    until: datetime


@dataclass(frozen=True, slots=True)
class EndpointFailure:
    """An enabled endpoint failing without a success since ``failing_since``, and the
    auto-disable step already taken for that period (``domain.operational.FailureStep``)."""

    endpoint_id: str
    app_id: str
    endpoint_uid: str | None
    failing_since: datetime
    step: int


@dataclass(frozen=True, slots=True)
class IdempotencyCompletion:
    """The response to store under a reserved key, in the same transaction as the work."""

    scope: str
    key: str
    status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class IdempotentResponse:
    request_hash: str
    status: int | None
    body: bytes | None

    @property
    def completed(self) -> bool:
        return self.status is not None


@dataclass(frozen=True, slots=True)
class LeaseOffer:
    """Room a worker in this process has for deliveries taken straight from a publish.

    A delivery handed over this way is written already leased, in the publish's own
    transaction, so the worker skips the claim (a transaction and a read of the message it
    already holds in memory) and a crash before the attempt only lets the lease run out.
    """

    worker_id: str
    lease_token: str
    lease_until: datetime
    slots: int
    """Deliveries the worker reserved room for (its free slots when it made the offer)."""
    admission: AdmissionSnapshot
    """Which deliveries the worker may take on, per endpoint and within ``slots``: its
    admission decision (``domain/admission.py``), fixed when the offer was made, which the
    transaction consults for each delivery instead of deciding itself."""


@dataclass(frozen=True, slots=True)
class PruneBatch:
    """What one pruning transaction scanned and removed (or, dry, would remove)."""

    scanned_to: str | None
    """The last message id scanned, where the next batch starts; None when the scan reached
    the horizon."""
    messages: int
    deliveries: int
    attempts: int
    held: int
    """Messages past the horizon kept because a delivery of theirs is pending or sending."""


@dataclass(frozen=True, slots=True)
class RekeyBatch:
    """What one batch of ``hookline rekey`` scanned and re-encoded (or, dry, would)."""

    scanned_to: str | None
    """The last endpoint id scanned, where the next batch starts; None at the end."""
    scanned: int
    rekeyed: int
    raced: int
    """Endpoints changed by a concurrent writer between the read and the write, left as
    that writer stored them (a later pass looks at them again)."""


class Handoff(Protocol):
    """The local worker's side of a publish handoff (``Store.attach_handoff``)."""

    def offer(self) -> LeaseOffer | None:
        """Reserve the free slots for one publish transaction; None if none are free."""
        ...

    def accept(
        self, offer: LeaseOffer, claimed: Sequence[ClaimedDelivery], left_for: Collection[str]
    ) -> None:
        """After the commit: start ``claimed``, give back unused slots, and know that the
        endpoints in ``left_for`` have deliveries waiting; called with nothing on failure."""
        ...


class Store(Protocol):
    """What hookline needs from a database; see tests/integration/test_store_contract.py."""

    async def open(self) -> None:
        """Connect; initialise an empty database; refuse a schema that is behind."""
        ...

    async def migrate(self) -> list[int]:
        """Apply pending migrations in order; return the versions applied."""
        ...

    async def close(self) -> None: ...

    # applications
    async def create_application(self, app: Application) -> None: ...
    async def get_application(self, id_or_uid: str) -> Application | None: ...
    async def list_applications(
        self, query: ListQuery, exclude_without_endpoints: bool = False
    ) -> Page[Application]: ...
    async def update_application(self, app: Application) -> Application | None:
        """Write ``app`` only if its stored row is still at ``app.version``, moving the
        version by one; return it as stored (with the new version), or None when the row
        was changed by someone else since it was read, or is gone.

        Optimistic concurrency: the caller re-reads, applies its change again and retries a
        bounded number of times, then reports a conflict (409 ``concurrent_update``), so no
        writer ever silently overwrites another's change.
        """
        ...

    async def delete_application(self, app_id: str) -> None: ...

    # event types
    async def create_event_type(self, event_type: EventType) -> None: ...
    async def get_event_type(self, name: str) -> EventType | None: ...
    async def list_event_types(
        self, query: ListQuery, include_archived: bool
    ) -> Page[EventType]: ...
    async def update_event_type(self, event_type: EventType) -> EventType | None:
        """Write ``event_type`` only at its ``version``, as ``update_application``."""
        ...

    async def delete_event_type(self, name: str) -> None: ...
    async def missing_event_types(self, names: Sequence[str]) -> list[str]: ...

    # endpoints
    async def create_endpoint(self, endpoint: Endpoint) -> None: ...
    async def get_endpoint(self, app_id: str, id_or_uid: str) -> Endpoint | None: ...
    async def list_endpoints(self, app_id: str, query: ListQuery) -> Page[Endpoint]: ...
    async def count_endpoints(self, app_id: str) -> int:
        """How many endpoints the application has (for ``HOOKLINE_MAX_ENDPOINTS_PER_APP``)."""
        ...

    async def update_endpoint(self, endpoint: Endpoint) -> Endpoint | None:
        """Write ``endpoint`` only at its ``version``, as ``update_application``.

        The worker's disable on 410 Gone (``complete`` with ``disable_endpoint``) moves the
        version too, so an update read before it is refused instead of re-enabling it.
        """
        ...

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None: ...
    async def endpoint_stats(
        self,
        app_id: str,
        endpoint_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> EndpointStats:
        """Deliveries by status; with ``since``/``until``, of messages created in that range."""
        ...

    async def endpoint_rollups(
        self,
        endpoint_id: str,
        period_seconds: int,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Rollup]:
        """An endpoint's attempt rollups of one period (``domain/rollups.py``) that start in
        [``start``, ``end``), oldest first; written by ``complete`` with the attempts."""
        ...

    async def sum_rollups(
        self,
        endpoint_id: str,
        period_seconds: int,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> RollupSummary:
        """The same rows as ``endpoint_rollups``, added up by the database."""
        ...

    async def app_attempts(
        self, period_seconds: int, start: datetime, end: datetime
    ) -> dict[str, int]:
        """Attempts per application in the rollups of one period that start in
        [``start``, ``end``); an application without any is absent."""
        ...

    async def prune_rollups(
        self, period_seconds: int, before: datetime, limit: int, dry_run: bool = False
    ) -> int:
        """Remove (or, dry, count) at most ``limit`` of the oldest rollups of one period that
        started before ``before``; how many. Retention calls it until it returns fewer."""
        ...

    # messages: publishing writes the message and its deliveries in one transaction
    async def publish(
        self,
        messages: Sequence[Message],
        now: datetime,
        only_endpoint: str | None = None,
        completion: IdempotencyCompletion | None = None,
    ) -> list[list[str]]:
        """Store messages with one delivery per matching endpoint; return endpoint ids each.

        ``only_endpoint`` restricts fan-out to one endpoint (``send-example``). A
        ``completion`` records the idempotent response in the same transaction, so a
        retry after an unacknowledged commit replays it instead of publishing twice.
        """
        ...

    def attach_handoff(self, handoff: Handoff) -> None:
        """Lease what publishes route to this process's worker, within the room it offers."""
        ...

    async def get_message(self, app_id: str, id_or_event_id: str) -> Message | None: ...
    async def list_messages(
        self, app_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[Message]: ...
    async def expunge_message_content(self, app_id: str, msg_id: str) -> None: ...

    # deliveries: the queue
    async def claim_due(
        self,
        limit: int,
        now: datetime,
        lease_until: datetime,
        worker_id: str,
        busy_endpoints: Sequence[str] = (),
        per_endpoint: int | None = None,
        endpoint_caps: Mapping[str, int] | None = None,
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, oldest first but at most ``per_endpoint``
        from one endpoint (fewer from those ``endpoint_caps`` names), skipping endpoints the
        caller has saturated."""
        ...

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None: ...
    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        """Give leased deliveries back, pending until ``until``, without an attempt."""
        ...

    async def divert(self, diversions: Sequence[Diversion]) -> None:
        """Fail each leased delivery (while its lease holds) and write its stand-in, in one
        transaction per diversion; one whose fallback cannot take it is put back instead,
        as ``defer`` would."""
        ...

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None: ...
    async def skip_held(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> bool:
        """Fail a held delivery (a dead letter), so its ordered endpoint's line moves on;
        False when the delivery is not held."""
        ...

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None: ...

    # workers: heartbeats let a dead worker's deliveries be taken over before their lease ends
    async def heartbeat(self, worker_id: str, now: datetime) -> None: ...
    async def renew_leases(
        self, worker_id: str, lease_tokens: Collection[str], lease_until: datetime
    ) -> None:
        """Extend the leases this live worker holds under ``lease_tokens`` (those of the
        deliveries it is working on), so none runs out while it waits; a lease it does not
        name (taken by a claim whose outcome it never learned) is left to run out."""
        ...

    async def unregister_worker(self, worker_id: str) -> None: ...
    async def queue_health(self, alive_since: datetime) -> QueueHealth:
        """The workers heard from since ``alive_since`` and the earliest due time of the
        pending deliveries of enabled endpoints (for ordered ones, each sequence's head),
        from index probes only: readiness asks it on every probe."""
        ...

    async def backlog_sample(self, now: datetime, alive_since: datetime) -> BacklogSample:
        """The due backlog and its oldest delivery at ``now``, with the workers heard from
        since ``alive_since``, the disabled endpoints and the open breakers. It reads every
        due row's index entry, so it is sampled in the background, never per request."""
        ...

    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None:
        """Give back to the queue the deliveries of workers silent since ``stalled_before``,
        and those that this process's claims and hand-overs of unknown outcome may have
        leased (a claim does the latter too, before it leases)."""
        ...

    async def listen(
        self, wake: Callable[[], None], endpoint_changed: EndpointChanged | None = None
    ) -> None:
        """Call ``wake`` whenever new work may be due, and ``endpoint_changed`` whenever an
        endpoint is disabled or enabled again, by any process, until cancelled (no-op if
        unsupported: SQLite's processes learn on their heartbeat, ``endpoint_states``)."""
        ...

    async def endpoint_states(self, endpoint_ids: Collection[str]) -> dict[str, tuple[int, bool]]:
        """Each existing endpoint's row version and whether it is disabled."""
        ...

    # circuits: per-endpoint breaker state that holds across workers
    async def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        """Record that an endpoint's breaker opened or re-opened (``state``), or closed
        (None); of two openings, the one that holds the endpoint longer is kept."""
        ...

    async def open_circuits(self, now: datetime) -> dict[str, CircuitState]:
        """Every circuit not closed (open, or half-open with or without a probe out),
        whichever worker opened it: what a heartbeat learns. A circuit absent here is
        closed."""
        ...

    async def claim_probe(
        self, endpoint_id: str, worker_id: str, now: datetime, probe_until: datetime
    ) -> tuple[ProbeGrant, CircuitState | None]:
        """Bid for a half-open circuit's one probe (compare-and-set): GRANTED to one worker
        until ``probe_until`` (its probe lease); else TAKEN with the circuit as it stands
        (cooling down, or another worker's probe out), or CLOSED if there is none."""
        ...

    async def circuits_of(self, endpoint_ids: Sequence[str]) -> dict[str, CircuitState]:
        """The circuits of these endpoints that are not closed, in one query (the API)."""
        ...

    # failing endpoints: auto-disable's state, written on transitions only
    async def mark_endpoints_failing(self, endpoint_ids: Sequence[str], since: datetime) -> None:
        """Start a failing period at ``since`` for each endpoint not already in one."""
        ...

    async def mark_endpoints_healthy(self, endpoint_ids: Sequence[str]) -> dict[str, datetime]:
        """End the failing period of each endpoint (a success, or it was disabled); the
        periods this call ended, by endpoint, with when each began. Of several workers
        ending one period at once, one is told."""
        ...

    async def failing_endpoints(self, before: datetime) -> list[EndpointFailure]:
        """Enabled endpoints failing since ``before`` or earlier, auto-disable not done."""
        ...

    async def advance_failure_step(self, endpoint_id: str, since: datetime, step: int) -> bool:
        """Record ``step`` for the failing period that began at ``since``; True only for the
        one caller that raised it (so each warning and the disable happen once), False if it
        was taken already or the period ended."""
        ...

    # background tasks: durable rows any process's runner leases and walks in batches
    async def create_task(self, task: BackgroundTask) -> None:
        """Store a new running task, free for any runner to lease at once."""
        ...

    async def get_task(self, task_id: str) -> BackgroundTask | None: ...
    async def list_tasks(
        self,
        app_id: str | None,
        query: ListQuery,
        statuses: Sequence[TaskStatus] | None = None,
        kinds: Sequence[TaskKind] | None = None,
    ) -> Page[BackgroundTask]:
        """Tasks of one application, or of all with ``app_id`` None (an admin), in one of
        ``statuses`` and of one of ``kinds`` when given."""
        ...

    async def lease_task(
        self, now: datetime, lease_until: datetime, lease_token: str
    ) -> BackgroundTask | None:
        """Take the oldest running task nobody holds (or whose holder's lease ran out, its
        process died), until ``lease_until``; None if there is none."""
        ...

    async def release_task(self, task_id: str, lease_token: str, now: datetime) -> None:
        """Hand a task this runner holds back, free for any runner to lease at once."""
        ...

    async def cancel_task(self, task_id: str, now: datetime) -> bool:
        """Stop a running task after its current batch; False if it was not running."""
        ...

    async def finish_task(
        self, task_id: str, lease_token: str, result: dict[str, object], now: datetime
    ) -> bool:
        """Finish a statistics task with its result, only while ``lease_token`` holds it;
        whether it did."""
        ...

    async def fail_task(self, task_id: str, lease_token: str, error: str, now: datetime) -> None:
        """End a task this runner holds as failed, with the reason."""
        ...

    async def task_rows(self, task: BackgroundTask, cursor: str, limit: int) -> list[TaskRow]:
        """The next rows of the task's walk after ``cursor``: about ``limit`` of them, read
        through an index whatever the filters, so that no batch scans without bound."""
        ...

    async def checkpoint_task(self, checkpoint: TaskCheckpoint) -> bool:
        """Write a batch's deliveries and move the task's cursor and counts in one
        transaction; False (nothing written) if the task was canceled or taken over."""
        ...

    async def list_dead_letters(
        self, app_id: str, query: ListQuery, filters: DeadLetterFilter
    ) -> Page[DeadLetter]:
        """Failed deliveries of the application, newest first by default."""
        ...

    # policies the worker applies without a read per delivery
    async def application_policies(self) -> dict[str, ApplicationPolicy]:
        """The policy of every application that sets one (docs/delivery.md, "Scheduling and
        retry policy"): workers read it on each heartbeat."""
        ...

    # rate limits: each limited endpoint's send timeline, shared by every worker
    async def take_rate_slots(
        self, requests: Sequence[SlotRequest], now: datetime
    ) -> dict[str, SlotGrant]:
        """Send slots for each request's endpoint, from the timeline all workers share
        (``domain/ratelimit.py``): at most ``wanted``, spaced at the request's rate, none
        beyond the grant horizon; with the endpoint's slowdown, if any."""
        ...

    async def slow_endpoint(self, endpoint_id: str, rate: float, now: datetime) -> None:
        """Record that a receiver asked ``endpoint_id`` to slow down to ``rate`` at ``now``."""
        ...

    async def endpoint_slowdown(self, endpoint_id: str) -> Slowdown | None:
        """The last slowdown recorded for one endpoint, over or not."""
        ...

    async def slowed_endpoints(self, now: datetime) -> dict[str, Slowdown]:
        """The slowdowns that may still hold at ``now``, whichever worker recorded them."""
        ...

    # attempts
    async def get_attempt(self, app_id: str, attempt_id: str) -> Attempt | None: ...
    async def list_attempts(
        self, app_id: str, query: ListQuery, filters: AttemptFilter, msg_id: str | None
    ) -> Page[Attempt]: ...
    async def list_attempted_messages(
        self,
        app_id: str,
        endpoint_id: str,
        query: ListQuery,
        filters: MessageFilter,
        status: MessageStatus | None = None,
    ) -> Page[tuple[Message, Delivery]]:
        """Messages sent to the endpoint with their delivery; ``status`` filters deliveries."""
        ...

    async def list_attempted_destinations(
        self, app_id: str, msg_id: str, query: ListQuery
    ) -> Page[tuple[Endpoint, Delivery]]: ...

    # tokens and idempotency
    async def create_token(self, token: AccessToken) -> None: ...
    async def find_token(self, token_hash: str) -> AccessToken | None: ...
    async def count_admin_tokens(self) -> int: ...
    async def get_token(self, token_id: str) -> AccessToken | None: ...
    async def list_tokens(self, app_id: str | None = None) -> list[AccessToken]:
        """Every token, oldest first, or those scoped to ``app_id``."""
        ...

    async def delete_token(self, token_id: str) -> bool:
        """Revoke: True if the token existed."""
        ...

    async def expire_token(self, token_id: str, until: datetime) -> bool:
        """Bring the token's expiry forward to ``until`` (never later than it was)."""
        ...

    async def touch_token(self, token_id: str, now: datetime) -> None: ...
    async def set_token_networks(self, token_id: str, networks: tuple[Network, ...] | None) -> bool:
        """Replace the token's client networks (None: any address); True if it exists."""
        ...

    async def mark_configured_token(self, token_id: str) -> None: ...
    async def delete_configured_tokens(self, keep_hash: str, keep_legacy_hash: str) -> int:
        """Delete every configured admin token but those stored under the two hashes."""
        ...

    async def server_key(self, name: str, candidate: str, now: datetime) -> str:
        """The key stored under ``name``, storing ``candidate`` if there is none yet."""
        ...

    # audit log (append-only: no method changes or removes one entry)

    async def append_audit(self, entry: AuditEntry) -> None:
        """Record one change in the audit log."""
        ...

    async def list_audit(self, query: ListQuery, filters: AuditFilter) -> Page[AuditEntry]:
        """A page of the audit log by id (oldest first unless ``query.descending``)."""
        ...

    async def prune_audit(self, before: datetime, limit: int, dry_run: bool = False) -> int:
        """Remove (or, dry, count) at most ``limit`` of the oldest entries recorded before
        ``before``; how many. Retention calls it until it returns fewer than ``limit``."""
        ...

    # anomalies (domain/anomaly.py)

    async def rollup_points(
        self, period_seconds: int, starts: Sequence[datetime], endpoint_ids: Sequence[str]
    ) -> list[Point]:
        """These endpoints' rollup rows of one period that start at one of ``starts``: the
        hour rows anomaly detection's baselines come from, by primary-key probes."""
        ...

    async def rollup_totals(
        self, period_seconds: int, start: datetime, end: datetime, endpoint_ids: Sequence[str]
    ) -> dict[str, Counts]:
        """These endpoints' rollup rows of one period starting in [``start``, ``end``), added
        up per endpoint by the database (anomaly detection's window); an endpoint without
        rows is absent."""
        ...

    async def anomaly_subjects(self) -> list[Subject]:
        """The enabled endpoints anomaly detection judges, each since its creation: not the
        operational webhooks', nor those whose policy sets ``anomalies.detect`` false."""
        ...

    async def take_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the lease of the periodic job ``name`` until ``until``: True when
        ``holder`` now holds it (it held it already, or the last holder's ran out by
        ``now``), so one process of a deployment runs the job at a time."""
        ...

    async def open_anomalies(self) -> list[Anomaly]: ...
    async def open_anomaly(self, anomaly: Anomaly) -> bool:
        """Store a new open anomaly; False (and nothing written) when one of its subject
        and kind is open already, so of several workers only one reports it."""
        ...

    async def see_anomalies(self, seen: Sequence[tuple[str, float]], now: datetime) -> None:
        """Open anomalies (id, observed) whose rule still holds at ``now``."""
        ...

    async def resolve_anomaly(self, anomaly_id: str, now: datetime) -> bool:
        """End an open anomaly; False when it had ended already (another worker did it)."""
        ...

    async def list_anomalies(
        self, query: ListQuery, status: str | None, app_id: str | None = None
    ) -> Page[Anomaly]:
        """A page of anomalies by id; ``status`` ``open`` or ``resolved`` keeps those, and
        ``app_id`` one application's (its own and its endpoints')."""
        ...

    async def prune_anomalies(self, before: datetime, limit: int, dry_run: bool = False) -> int:
        """Remove (or, dry, count) at most ``limit`` of the anomalies resolved before
        ``before``; how many. An open anomaly is kept, however old."""
        ...

    # portal branding (domain/branding.py)
    async def portal_branding(self, app_id: str) -> dict[str, str] | None:
        """The application's branding defaults as they were set (parameter names to the
        values given), or None when none are."""
        ...

    async def set_portal_branding(
        self, app_id: str, settings: Mapping[str, str], now: datetime
    ) -> None:
        """Replace the application's branding defaults."""
        ...

    async def delete_portal_branding(self, app_id: str) -> bool:
        """Remove them; False when there were none."""
        ...

    # failure groups (domain/failure_groups.py)

    async def endpoints_with_failures(self, start: datetime, end: datetime) -> list[str]:
        """The endpoints whose minute rollups starting in [``start``, ``end``) count a
        failed attempt: the only ones whose attempt log a grouping pass reads."""
        ...

    async def failed_attempts(
        self, endpoint_id: str, after_id: str, before_id: str, limit: int
    ) -> list[FailedAttempt]:
        """At most ``limit`` of the endpoint's failed attempts with ids strictly between
        ``after_id`` and ``before_id``, by id."""
        ...

    async def scan_cursor(self, name: str) -> datetime | None:
        """Where the periodic pass ``name`` last ended; None before its first pass."""
        ...

    async def advance_scan_cursor(
        self, name: str, previous: datetime | None, until: datetime
    ) -> bool:
        """Move the cursor ``name`` from ``previous`` (None: absent) to ``until``; False,
        and nothing changed, when it no longer stood at ``previous`` (another pass moved it),
        so of two passes over one range only one counts it."""
        ...

    async def add_failures(self, sightings: Sequence[Sighting]) -> None:
        """Add each sighting to its key's group: open it if there is none, add to it if it
        is unresolved, reopen it (counters started again) if it was resolved."""
        ...

    async def failure_group(self, group_id: str) -> FailureGroup | None: ...
    async def list_failure_groups(
        self, query: ListQuery, filters: GroupFilter
    ) -> Page[FailureGroup]:
        """A page of groups by id that pass ``filters``."""
        ...

    async def quiet_failure_groups(
        self, before: datetime, limit: int, after: FailureGroup | None = None
    ) -> list[FailureGroup]:
        """At most ``limit`` unresolved groups whose last failure is before ``before``, the
        quietest first (by last failure, then id), after ``after`` (a group of the previous
        page, as it was read)."""
        ...

    async def acknowledge_failure_group(self, group_id: str, now: datetime) -> bool:
        """Acknowledge an open group; False when it was not open."""
        ...

    async def resolve_failure_group(
        self, group_id: str, now: datetime, by: ResolvedBy, seen_until: datetime | None = None
    ) -> bool:
        """Resolve an unresolved group; with ``seen_until``, only if its last failure is not
        after it (an automatic resolve must not hide a failure added since it read the
        group). False when nothing changed."""
        ...

    async def prune_failure_groups(
        self, before: datetime, limit: int, dry_run: bool = False
    ) -> int:
        """Remove (or, dry, count) at most ``limit`` of the groups resolved before
        ``before``; how many. An unresolved group is kept, however old."""
        ...

    async def idempotency_begin(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> IdempotentResponse | None:
        """Reserve a key; return the earlier request's record if the key was already used."""
        ...

    async def idempotency_renew(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> None:
        """Keep a reservation this request still holds from going stale: a reservation not
        renewed for ``IDEMPOTENCY_LEASE_SECONDS`` is taken over by the next request."""
        ...

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None: ...
    async def idempotency_abandon(self, scope: str, key: str) -> None: ...
    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None: ...
    async def expire_payloads(self, now: datetime, limit: int) -> int:
        """Remove the payloads of at most ``limit`` messages whose payload expired before
        ``now`` (the message stays); how many. One short transaction: the caller repeats
        while a batch comes back full."""
        ...

    # retention: bounded batches, each one short transaction (docs/delivery.md#retention)
    async def prune_batch(
        self, before: datetime, after_id: str, limit: int, dry_run: bool = False
    ) -> PruneBatch:
        """Scan the next ``limit`` messages after ``after_id`` created before ``before``, and
        remove those whose deliveries are all finished (succeeded or failed), with their
        deliveries and attempts, in one transaction. A message with a delivery pending or
        sending is kept whole (``held``). Several pruners may run at once: on PostgreSQL
        their batches take turns; on SQLite the write lock serialises them anyway."""
        ...

    async def prune_tasks(self, before: datetime, dry_run: bool = False) -> int:
        """Remove the background tasks that ended (finished, failed or canceled) before
        ``before``; how many (or, dry, how many would go). A running task stays, however
        old."""
        ...

    async def reclaim_space(self, max_pages: int) -> int:
        """Give up to ``max_pages`` free pages back to the file system (SQLite's incremental
        vacuum); the pages released. PostgreSQL's autovacuum reuses space itself: 0."""
        ...

    async def compact(self) -> bool:
        """Reclaim what pruning freed now. SQLite: rebuild the file (``VACUUM``), which also
        switches an older file to ``auto_vacuum = INCREMENTAL``; PostgreSQL: ``VACUUM`` the
        pruned tables, as autovacuum would. True when it was done."""
        ...

    # secrets at rest (storage/codec.py): hookline rekey
    async def rekey_batch(self, after_id: str, limit: int, dry_run: bool = False) -> RekeyBatch:
        """Re-encode, with the codec's current key, the secret columns of the next ``limit``
        endpoints after ``after_id`` that are stored otherwise (under an older key, or
        plaintext from before keys were configured), each by compare-and-set, so a
        concurrent update is never overwritten."""
        ...

    async def forget_replaced_secrets(self) -> None:
        """Make the replaced text leave the database files where the backend can: SQLite
        truncates its WAL (``secure_delete`` already zeroed the old cells); PostgreSQL
        vacuums ``endpoints``."""
        ...

    # the operator console (web/console/): the live tail and deployment-wide rollups

    async def tail_attempts(
        self, after_id: str, limit: int, app_id: str | None = None
    ) -> list[Attempt]:
        """At most ``limit`` attempts of every application (or of ``app_id``) whose ids sort
        after ``after_id``, oldest first: the console's live tail polls with the last id it
        showed, since attempt ids sort by time (``domain/ids.py``)."""
        ...

    async def rollup_series(
        self, period_seconds: int, start: datetime, end: datetime
    ) -> list[Rollup]:
        """Every endpoint's rollup rows of one period starting in [``start``, ``end``), added
        up per start, oldest first; a start without any row is absent."""
        ...

    async def worst_endpoints(
        self, period_seconds: int, start: datetime, end: datetime, min_attempts: int, limit: int
    ) -> list[EndpointShare]:
        """The ``limit`` endpoints with the most failed attempts in one period's rows starting
        in [``start``, ``end``), among those with at least ``min_attempts`` and one failure;
        ties go to the lower success share."""
        ...

    # deliveries search (domain/search.py): the operator console's list

    async def search_deliveries(self, search: DeliverySearch) -> Page[DeliveryRow]:
        """A page of deliveries across applications (or of ``search.app_id``'s), newest
        message first by (message id, endpoint id), holding every filter and term. A page
        reads its rows through indexes: the word index picks the messages of payload terms
        (``message_search`` on SQLite, ``messages_words`` on PostgreSQL), the other
        filters narrow the walk of the deliveries that the endpoint, application or time
        range selects."""
        ...
