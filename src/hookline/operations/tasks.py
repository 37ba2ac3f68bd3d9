"""Background tasks: recover, replay-missing, bulk replay, dead-letter redrive and the bulk
expunge of message content (``application.purge_content``), and the runner that also
computes Svix's statistics tasks (``operations/statistics.py``).

Starting one stores a durable row and answers at once; a runner in any process that runs a
worker leases the row and walks it batch by batch (``domain/tasks.py``), each batch's
deliveries written in one transaction with the task's new cursor and counts. A runner that
dies leaves its lease to run out, and any runner resumes from the last committed batch; a
cancel takes effect between batches. Everything a task touches is confined to the
application (and endpoint) the caller resolved here, with tenant isolation; the store's
queries are keyed on those ids too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from hookline.domain import audit as a
from hookline.domain import ids
from hookline.domain.errors import Conflict, InvalidRequest, NotFound, Unavailable
from hookline.domain.models import MessageStatus, Page
from hookline.domain.tasks import (
    BackgroundTask,
    DeadLetter,
    EndpointRoute,
    TaskFilter,
    TaskKind,
    TaskRow,
    TaskStatus,
    new_task,
    selects,
)
from hookline.instrumentation import BackgroundTaskFinished
from hookline.operations import applications, endpoints, inputs, statistics
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import DeadLetterFilter, ListQuery, TaskCheckpoint

log = logging.getLogger("hookline.tasks")

BATCH_SIZE = 500
"""Rows a batch reads (and at most writes) in one transaction: small enough that a batch
never holds SQLite's write lock for long, so deliveries keep flowing beside a task."""
TASK_LEASE = timedelta(seconds=30)
"""How long a runner holds a task without committing a batch; a task whose runner died is
resumed by another runner this long after its last batch at most."""
POLL_SECONDS = 2.0
"""How often an idle runner looks for a task started by another process."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TaskRequest:
    """A task to start (or, with ``dry_run``, to count): its kind and its filters.

    ``endpoint`` is the endpoint's id or uid: the path's for recover and the replays,
    an optional filter for a redrive. ``since`` may be left out for a redrive only.
    """

    kind: TaskKind
    since: datetime | None = None
    until: datetime | None = None
    endpoint: str | None = None
    event_types: tuple[str, ...] | None = None
    channel: str | None = None
    tag: str | None = None
    status: MessageStatus | None = None
    status_code_class: int | None = None
    failed_since: datetime | None = None
    """Not on the wire: automatic recovery's start of the failing period."""
    status_code: int | None = None
    """Not on the wire: a failure group's exact status code (``operations/failure_groups``)."""
    cause: str | None = None
    """Not on the wire: the id of what started the task (a failure group), for the audit
    log."""


def task_data(task: BackgroundTask) -> dict[str, object]:
    """A task's progress as Svix's ``BackgroundTaskOut.data`` shows it, with hookline's
    ``canceled`` and ``error`` where they apply."""
    data: dict[str, object] = {"messagesScanned": task.scanned, "messagesSent": task.queued}
    if task.kind is TaskKind.PURGE_CONTENT:
        data = {"messagesScanned": task.scanned, "messagesExpunged": task.queued}
    if task.kind.computes:
        data = dict(task.result or {})
    if task.status is TaskStatus.CANCELED:
        data["canceled"] = True
    if task.error is not None:
        data["error"] = task.error
    return data


async def _draft(
    ops: Operations, principal: Principal, app_key: str, request: TaskRequest
) -> BackgroundTask:
    """The task as it would be stored, after tenant isolation and every check of its input."""
    app = await applications.resolve(ops, principal, app_key)
    endpoint_id = None
    if request.endpoint is not None:
        endpoint_id = (await endpoints.in_application(ops, app, request.endpoint)).id
    elif request.kind not in (TaskKind.REDRIVE, TaskKind.PURGE_CONTENT):
        raise InvalidRequest("an endpoint is required", loc=("path", "endpoint_id"))
    now = ops.clock()
    given_since = inputs.time(("body", "since"), request.since)
    since = given_since if given_since is not None else EPOCH
    until = inputs.time(("body", "until"), request.until) or now
    if request.since is None and request.kind is not TaskKind.REDRIVE:
        raise InvalidRequest("'since' is required", loc=("body", "since"))
    inputs.in_order("body", since, until)
    spec = TaskFilter(
        since=since,
        until=until,
        endpoint_id=endpoint_id if request.kind is TaskKind.REDRIVE else None,
        event_types=request.event_types,
        channel=request.channel,
        tag=request.tag,
        status=request.status,
        status_code_class=request.status_code_class,
        failed_since=request.failed_since,
        status_code=request.status_code,
    )
    return new_task(app.id, endpoint_id, request.kind, spec, now)


async def start(
    ops: Operations, principal: Principal, app_key: str, request: TaskRequest
) -> BackgroundTask:
    """Store the task for a runner to walk, and wake this process's runner."""
    task = await _draft(ops, principal, app_key, request)
    await ops.store.create_task(task)
    ops.task_queued()
    summary = a.summary(
        task=task.kind.wire, endpointId=task.endpoint_id, failureGroupId=request.cause
    )
    await record(
        ops, principal, a.TASK_STARTED, app_id=task.app_id, target_id=task.id, summary=summary
    )
    return task


async def run_to_end(
    ops: Operations,
    principal: Principal,
    app_key: str,
    request: TaskRequest,
    poll_seconds: float = 0.2,
) -> BackgroundTask:
    """Start a task and run tasks in this process until it ended (the CLI's way): if a
    server's runner took it first, wait for that runner to finish it."""
    started = await start(ops, principal, app_key, request)
    runner = TaskRunner(ops)
    while True:
        current = await get(ops, principal, started.id)
        if current.status is not TaskStatus.RUNNING:
            return current
        if not await runner.run_one():
            await asyncio.sleep(poll_seconds)


async def count(ops: Operations, principal: Principal, app_key: str, request: TaskRequest) -> int:
    """Dry run: how many deliveries the task would queue now, reading the same batches and
    writing nothing."""
    task = await _draft(ops, principal, app_key, request)
    route = await _route(ops, task)
    total = 0
    cursor = task.cursor
    while True:
        found = await ops.store.task_rows(task, cursor, BATCH_SIZE)
        total += sum(selects(task.kind, task.filter, row, route) for row in found)
        if len(found) < BATCH_SIZE:
            return total
        cursor = found[-1].key


async def _route(ops: Operations, task: BackgroundTask) -> EndpointRoute | None:
    if task.endpoint_id is None or task.app_id is None:
        return None
    endpoint = await ops.store.get_endpoint(task.app_id, task.endpoint_id)
    if endpoint is None:
        raise NotFound("Endpoint not found")
    return EndpointRoute(endpoint.event_types, endpoint.channels)


async def get(ops: Operations, principal: Principal, task_id: str) -> BackgroundTask:
    """A task of the caller's application (any task for an admin); another's is absent."""
    found = await ops.store.get_task(task_id)
    if found is None or not (principal.is_admin or principal.app_id == found.app_id):
        raise NotFound("Background task not found")
    return found


async def list_tasks(
    ops: Operations,
    principal: Principal,
    query: ListQuery,
    statuses: Sequence[TaskStatus] | None = None,
    kinds: Sequence[TaskKind] | None = None,
) -> Page[BackgroundTask]:
    """The caller's application's tasks (every task for an admin)."""
    return await ops.store.list_tasks(principal.app_id, query, statuses, kinds)


async def cancel(ops: Operations, principal: Principal, task_id: str) -> BackgroundTask:
    """Stop a running task after the batch in progress; what it queued so far stays queued."""
    task = await get(ops, principal, task_id)
    if not await ops.store.cancel_task(task.id, ops.clock()):
        raise Conflict(
            f"Background task {task.id} is {task.status.value}; only a running task can be "
            "canceled",
            code="task_not_running",
        )
    canceled = await get(ops, principal, task_id)
    _announce(ops, canceled)
    summary = {"task": canceled.kind.wire}
    await record(
        ops,
        principal,
        a.TASK_CANCELED,
        app_id=task.app_id or None,
        target_id=task.id,
        summary=summary,
    )
    return canceled


async def dead_letters(
    ops: Operations,
    principal: Principal,
    app_key: str,
    query: ListQuery,
    filters: DeadLetterFilter,
) -> Page[DeadLetter]:
    """The application's failed deliveries; an endpoint filter must name one of its own."""
    app = await applications.resolve(ops, principal, app_key)
    if filters.endpoint_id is not None:
        endpoint = await endpoints.in_application(ops, app, filters.endpoint_id)
        filters = replace(filters, endpoint_id=endpoint.id)
    return await ops.store.list_dead_letters(app.id, query, filters)


def _announce(ops: Operations, task: BackgroundTask) -> None:
    if ops.instrumentation.wants(BackgroundTaskFinished):
        ops.instrumentation.emit(
            BackgroundTaskFinished(
                task_id=task.id,
                app_id=task.app_id or None,
                task=task.kind.wire,
                status=task.status.wire,
                data=task_data(task),
            )
        )


class TaskRunner:
    """Walks background tasks in this process, one at a time, one batch per transaction."""

    def __init__(
        self,
        ops: Operations,
        *,
        batch_size: int = BATCH_SIZE,
        lease: timedelta = TASK_LEASE,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._ops = ops
        self._batch_size = batch_size
        self._lease = lease
        self._poll_seconds = poll_seconds
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: take a task and walk it, or wait for a wake-up or the next poll."""
        while not stop.is_set():
            try:
                worked = await self.run_one(stop)
            except Unavailable as exc:
                log.warning("background tasks paused: %s", exc)
                worked = False
            if worked:
                continue
            self._wake.clear()
            waits = [asyncio.ensure_future(e.wait()) for e in (stop, self._wake)]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED), self._poll_seconds
                )
            for waiter in waits:
                waiter.cancel()

    async def run_one(self, stop: asyncio.Event | None = None) -> bool:
        """Lease one task and walk it to its end, or until ``stop`` (then hand it back for
        another runner); False if no task was free."""
        token = uuid.uuid4().hex
        now = self._ops.clock()
        task = await self._ops.store.lease_task(now, now + self._lease, token)
        if task is None:
            return False
        current: BackgroundTask | None = task
        while current is not None and (stop is None or not stop.is_set()):
            walking = current
            try:
                current = await self.step(walking, token)
            except Unavailable:
                raise  # the lease runs out and the task is resumed once the store is back
            except Exception:
                log.exception("background task %s failed", walking.id)
                await self._fail(walking, token, "internal error; see the server's log")
                return True
        if current is not None:
            await self._ops.store.release_task(current.id, token, self._ops.clock())
        return True

    async def step(self, task: BackgroundTask, token: str) -> BackgroundTask | None:
        """One batch of ``task``; the task as it stands after it, or None once it ended or
        is no longer this runner's (canceled, or taken over after the lease ran out)."""
        store = self._ops.store
        if task.kind.computes:
            await self._compute(task, token)
            return None
        try:
            route = await _route(self._ops, task)
        except NotFound:
            await self._fail(task, token, "the endpoint was deleted")
            return None
        found = await store.task_rows(task, task.cursor, self._batch_size)
        return await self._commit(task, token, found, route)

    async def _compute(self, task: BackgroundTask, token: str) -> None:
        """A statistics task in one step: its result is written with its end."""
        result = await statistics.compute(self._ops, task)
        now = self._ops.clock()
        if await self._ops.store.finish_task(task.id, token, result, now):
            finished = replace(task, status=TaskStatus.FINISHED, result=result, updated_at=now)
            _announce(self._ops, finished)

    async def _fail(self, task: BackgroundTask, token: str, reason: str) -> None:
        await self._ops.store.fail_task(task.id, token, reason, self._ops.clock())
        ended = await self._ops.store.get_task(task.id)
        if ended is not None and ended.status is TaskStatus.FAILED:
            _announce(self._ops, ended)

    async def _commit(
        self,
        task: BackgroundTask,
        token: str,
        found: list[TaskRow],
        route: EndpointRoute | None,
    ) -> BackgroundTask | None:
        chosen = [row for row in found if selects(task.kind, task.filter, row, route)]
        expunge: list[str] = []
        if task.kind is TaskKind.PURGE_CONTENT:
            expunge, chosen = [row.msg_id for row in chosen], []
        now = self._ops.clock()
        checkpoint = TaskCheckpoint(
            task=task,
            lease_token=token,
            cursor=found[-1].key if found else task.cursor,
            scanned=len(found),
            requeue=[row.delivery_id for row in chosen if row.delivery_id is not None],
            new_deliveries=[
                (ids.new_id(ids.DELIVERY), row.msg_id) for row in chosen if row.delivery_id is None
            ],
            finished=len(found) < self._batch_size,
            now=now,
            lease_until=now + self._lease,
            expunge=expunge,
        )
        if not await self._ops.store.checkpoint_task(checkpoint):
            return None
        if chosen:
            self._ops.work_queued()
        after = replace(
            task,
            cursor=checkpoint.cursor,
            scanned=task.scanned + len(found),
            queued=task.queued + len(chosen) + len(expunge),
            status=TaskStatus.FINISHED if checkpoint.finished else TaskStatus.RUNNING,
            updated_at=now,
        )
        if checkpoint.finished:
            _announce(self._ops, after)
            return None
        return after
