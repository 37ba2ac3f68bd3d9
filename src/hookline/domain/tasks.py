"""Background tasks (recover, replay-missing, bulk replay, dead-letter redrive, the bulk
expunge of message content, and Svix's statistics tasks) as pure rules.

A task walks a key range in batches. Each batch reads a bounded run of rows (messages, or
one endpoint's deliveries, or an application's dead letters) and ``selects`` decides which
of them the task acts on, so the filters never make one database read scan without bound.
Times come from the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from hookline.domain import ids
from hookline.domain.models import MessageStatus
from hookline.domain.routing import endpoint_accepts

ID_CLOCK_MARGIN = timedelta(seconds=1)
"""How far a message's id time may stray from its ``created_at`` (both read at publish, not
at the same instant): key ranges are widened by it, and ``created_at`` decides exactly."""


class TaskKind(StrEnum):
    """What a task does; the value is its Svix ``BackgroundTaskType`` except for redrive."""

    RECOVER = "endpoint.recover"
    REPLAY_MISSING = "endpoint.replay"
    BULK_REPLAY = "endpoint.bulk-replay"
    REDRIVE = "dead-letter.redrive"
    APP_STATS = "application.stats"
    EVENT_TYPE_AGGREGATE = "event-type.aggregate"
    PURGE_CONTENT = "application.purge_content"
    """Expunge the payloads of an application's messages that pass the filters (the bulk
    form of Svix's ``DELETE …/msg/{msg_id}/content``; Svix names the task type so)."""

    @property
    def computes(self) -> bool:
        """A statistics task: it reads and computes a result in one step (its ``data``),
        instead of walking deliveries in batches; it belongs to no application."""
        return self in (TaskKind.APP_STATS, TaskKind.EVENT_TYPE_AGGREGATE)

    @property
    def wire(self) -> str:
        """Svix has no redrive type: a redrive is shown as the bulk replay of failures it is,
        so Svix SDKs can read it."""
        return TaskKind.BULK_REPLAY.value if self is TaskKind.REDRIVE else self.value


class TaskStatus(StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELED = "canceled"
    """hookline's own: Svix's ``BackgroundTaskStatus`` has no such value, so it is shown as
    ``failed`` with ``data.canceled = true`` (SDK models refuse unknown statuses)."""

    @property
    def wire(self) -> str:
        return TaskStatus.FAILED.value if self is TaskStatus.CANCELED else self.value


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """What a task acts on: messages created in [since, until) that pass every set filter."""

    since: datetime
    until: datetime
    endpoint_id: str | None = None
    event_types: tuple[str, ...] | None = None
    channel: str | None = None
    tag: str | None = None
    status: MessageStatus | None = None
    status_code_class: int | None = None
    failed_since: datetime | None = None
    """Only deliveries whose row last changed at or after this: automatic recovery's
    failing period (``operations/recovery.py``), so that it re-sends what failed during the
    outage and not an earlier outage's failures."""
    app_ids: tuple[str, ...] | None = None
    """An application-statistics task's applications (resolved ids); None for all."""
    status_code: int | None = None
    """Only deliveries whose last attempt got exactly this status code: the replay of a
    failure group (``operations/failure_groups.py``)."""


@dataclass(frozen=True, slots=True)
class TaskRow:
    """One row a batch read: a message, with its delivery to the endpoint if there is one."""

    key: str
    """Where the next batch starts after this row."""
    msg_id: str
    endpoint_id: str | None
    delivery_id: str | None
    status: MessageStatus | None
    attempt_count: int
    updated_at: datetime | None
    event_type: str
    channels: tuple[str, ...] | None
    tags: tuple[str, ...] | None
    created_at: datetime
    last_status_code: int | None
    held: bool = False
    """Pending with no attempt due: an ordered endpoint's line stopped at it (``hold``)."""
    has_content: bool = True
    """The message's payload is still stored (a content purge's read says; others assume)."""


DeadLetter = TaskRow
"""A delivery that failed for good (status ``fail``, no attempt scheduled)."""


@dataclass(frozen=True, slots=True)
class EndpointRoute:
    """The endpoint's current filters, which replay-missing honours."""

    event_types: tuple[str, ...] | None
    channels: tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class BackgroundTask:
    id: str
    app_id: str
    endpoint_id: str | None
    kind: TaskKind
    status: TaskStatus
    filter: TaskFilter
    cursor: str
    """The key the last committed batch ended at; the next batch reads after it."""
    scanned: int
    queued: int
    error: str | None
    created_at: datetime
    updated_at: datetime
    result: dict[str, object] | None = None
    """What a statistics task computed, once finished (its Svix ``data``)."""

    @property
    def upper_key(self) -> str:
        """Keys at or above this are past the time range (not used by redrive)."""
        return ids.first_id_at(ids.MESSAGE, _ms(self.filter.until + ID_CLOCK_MARGIN))


NO_APPLICATION = ""
"""The ``app_id`` of a task that belongs to the organization (a statistics task)."""


def first_cursor(kind: TaskKind, since: datetime) -> str:
    """Redrive walks dead letters by delivery id from the start, and a statistics task walks
    nothing; the others walk message ids from ``since`` (less the clock margin)."""
    if kind is TaskKind.REDRIVE or kind.computes:
        return ""
    return ids.first_id_at(ids.MESSAGE, _ms(since - ID_CLOCK_MARGIN))


def new_task(
    app_id: str, endpoint_id: str | None, kind: TaskKind, spec: TaskFilter, now: datetime
) -> BackgroundTask:
    """A task as it starts: running, at its first cursor, nothing scanned yet."""
    return BackgroundTask(
        id=ids.new_id(ids.TASK),
        app_id=app_id,
        endpoint_id=endpoint_id,
        kind=kind,
        status=TaskStatus.RUNNING,
        filter=spec,
        cursor=first_cursor(kind, spec.since),
        scanned=0,
        queued=0,
        error=None,
        created_at=now,
        updated_at=now,
    )


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def in_code_class(code: int | None, code_class: int) -> bool:
    """Svix's ``StatusCodeClass``: 0 is no HTTP answer, 100…500 a hundred codes each."""
    if code is None:
        return False
    return code == 0 if code_class == 0 else code_class <= code < code_class + 100


def selects(
    kind: TaskKind, spec: TaskFilter, row: TaskRow, route: EndpointRoute | None = None
) -> bool:
    """Whether the task acts on ``row``: a content purge expunges a message whose payload is
    still stored; replay-missing queues a message the endpoint has no
    delivery of and whose type and channels its filters accept now; the others re-queue a
    finished delivery (failed only, for recover and redrive; recover also a held one) that
    passes the filters."""
    if not spec.since <= row.created_at < spec.until:
        return False
    if kind is TaskKind.PURGE_CONTENT:
        return row.has_content and _passes(spec, row)
    if kind is TaskKind.REPLAY_MISSING:
        return (
            row.delivery_id is None
            and route is not None
            and endpoint_accepts(route.event_types, route.channels, row.event_type, row.channels)
        )
    if row.delivery_id is None:
        return False
    if row.held:
        # A held head of an ordered endpoint's line: recover releases it like a failure.
        return kind is TaskKind.RECOVER and _passes(spec, row)
    if row.status not in (MessageStatus.SUCCESS, MessageStatus.FAIL):
        return False
    if kind in (TaskKind.RECOVER, TaskKind.REDRIVE) and row.status is not MessageStatus.FAIL:
        return False
    return _passes(spec, row)


def _passes(spec: TaskFilter, row: TaskRow) -> bool:
    checks = (
        spec.endpoint_id is None or row.endpoint_id == spec.endpoint_id,
        not spec.event_types or row.event_type in spec.event_types,
        spec.channel is None or spec.channel in (row.channels or ()),
        spec.tag is None or spec.tag in (row.tags or ()),
        spec.status is None or row.status is spec.status,
        spec.status_code_class is None
        or in_code_class(row.last_status_code, spec.status_code_class),
        spec.status_code is None or row.last_status_code == spec.status_code,
        spec.failed_since is None
        or (row.updated_at is not None and row.updated_at >= spec.failed_since),
    )
    return all(checks)
