"""The storage contract every backend honours and the contract suite checks.

The store is also the queue: messages and their delivery rows are written in one
transaction, and workers lease deliveries from the same tables. Every method is a
coroutine so an API handler never blocks the event loop on I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hookline.domain.admission import AdmissionSnapshot
from hookline.domain.breaker import CircuitState
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

MAX_LIST_LIMIT = 250
DEFAULT_LIST_LIMIT = 50


@dataclass(frozen=True, slots=True)
class ListQuery:
    """Cursor pagination: ``iterator`` is an item key; a leading ``-`` pages backwards."""

    limit: int = DEFAULT_LIST_LIMIT
    iterator: str | None = None
    descending: bool = False


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
class AttemptOutcome:
    """The result of one attempt and what it does to its delivery (decided in ``domain``)."""

    claimed: ClaimedDelivery
    attempt: Attempt
    delivery_status: MessageStatus
    next_attempt_at: datetime | None
    scheduled_attempts: int
    disable_endpoint: bool


@dataclass(frozen=True, slots=True)
class Deferral:
    """A leased delivery put back unattempted (its endpoint's breaker is open)."""

    claimed: ClaimedDelivery
    until: datetime


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
    async def ping(self) -> None: ...

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
    ) -> list[ClaimedDelivery]:
        """Lease up to ``limit`` due deliveries, oldest first but at most ``per_endpoint``
        from one endpoint, skipping endpoints the caller has saturated."""
        ...

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None: ...
    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        """Give leased deliveries back, pending until ``until``, without an attempt."""
        ...

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None: ...
    async def recover(
        self, app_id: str, endpoint_id: str, since: datetime, until: datetime, now: datetime
    ) -> int: ...
    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None: ...

    # workers: heartbeats let a dead worker's deliveries be taken over before their lease ends
    async def heartbeat(self, worker_id: str, now: datetime) -> None: ...
    async def renew_leases(self, worker_id: str, lease_until: datetime) -> None:
        """Extend every lease this live worker holds, so none runs out while it waits."""
        ...

    async def unregister_worker(self, worker_id: str) -> None: ...
    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None: ...
    async def listen(self, wake: Callable[[], None]) -> None:
        """Call ``wake`` whenever new work may be due, until cancelled (no-op if unsupported)."""
        ...

    # circuits: per-endpoint breaker state that holds across workers
    async def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        """Record that an endpoint's breaker opened or re-opened (``state``), or closed
        (None); of two openings, the one that holds the endpoint longer is kept."""
        ...

    async def open_circuits(self, now: datetime) -> dict[str, CircuitState]:
        """The breakers still open at ``now``, whichever worker opened them."""
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
    async def idempotency_begin(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> IdempotentResponse | None:
        """Reserve a key; return the earlier request's record if the key was already used."""
        ...

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None: ...
    async def idempotency_abandon(self, scope: str, key: str) -> None: ...
    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None: ...

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

    async def reclaim_space(self, max_pages: int) -> int:
        """Give up to ``max_pages`` free pages back to the file system (SQLite's incremental
        vacuum); the pages released. PostgreSQL's autovacuum reuses space itself: 0."""
        ...

    async def compact(self) -> bool:
        """Reclaim what pruning freed now. SQLite: rebuild the file (``VACUUM``), which also
        switches an older file to ``auto_vacuum = INCREMENTAL``; PostgreSQL: ``VACUUM`` the
        pruned tables, as autovacuum would. True when it was done."""
        ...
