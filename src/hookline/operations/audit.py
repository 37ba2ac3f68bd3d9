"""Recording the audit log: the one helper every operation that changes state calls.

An operation calls ``record`` once its change has been written, with the caller's
``Principal`` (whose token id and address say who acted and from where) and a summary built
by ``domain.audit`` (field names, never values). The entry is written just after the change,
not in its transaction: the store's writes are one statement or one dialect-specific
transaction each, shared with the worker, and threading an entry through every one of them
would double the store's surface for one insert. So a change that fails (refused, absent,
conflicting, a lost race) records nothing, and a change that succeeds records exactly one
entry, unless the process dies, or the store fails, in the instant between the two writes:
then the entry is missing and the loss is logged at ERROR (docs/security.md, "Audit log").
The change is not reported as failed then, since it was made: a client told otherwise would
retry it. Reading the log is ``operations.audit_log``.

One change is not made by an operation: the worker disables an endpoint that answered
410 Gone in the transaction that records the attempt (delivery cannot import operations).
``WorkerDisables`` hears that disable (``EndpointDisabled``, emitted once the write landed)
and records it, as ``system``, from a task beside the worker.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Mapping
from typing import Any

from hookline.domain import audit as a
from hookline.domain import ids
from hookline.domain.audit import AuditEntry
from hookline.domain.errors import Unavailable
from hookline.instrumentation import EndpointDisabled, Event
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.queues import queued_or_stopped

log = logging.getLogger("hookline.audit")


async def record(
    ops: Operations,
    principal: Principal,
    action: str,
    *,
    app_id: str | None = None,
    target_id: str | None = None,
    summary: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry for a change that has just been written; return it."""
    entry = AuditEntry(
        id=ids.new_id(ids.AUDIT),
        created_at=ops.clock(),
        actor=principal.actor,
        address=principal.address,
        action=action,
        app_id=app_id,
        target_id=target_id,
        summary=dict(summary or {}),
        actor_app_id=principal.app_id,
    )
    try:
        await ops.store.append_audit(entry)
    except Unavailable as exc:
        log.error(
            "audit entry lost: %s of %s by %s (the change itself was made): %s",
            action,
            target_id,
            entry.actor,
            exc,
        )
    return entry


MAX_QUEUED = 10_000
"""Disables held while the store is slow; beyond it new ones are dropped (and said)."""


class WorkerDisables:
    """The instrumentation hook that records the endpoints the worker disabled because they
    answered 410 Gone: ``EndpointDisabled`` with trigger ``automatic`` and no failing period
    (an auto-disable after the failing period is recorded by ``endpoints.disable_failing``
    itself, and a manual one by the update). Queues inline, never blocks the emitter;
    ``run`` writes what queued, one entry per endpoint per batch (several deliveries in
    flight may each have been answered 410)."""

    events: frozenset[type[Event]] = frozenset({EndpointDisabled})

    def __init__(self) -> None:
        self._queue: deque[EndpointDisabled] = deque()
        self._queued = asyncio.Event()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, EndpointDisabled):
            return
        if event.trigger != "automatic" or event.fail_since is not None:
            return
        if len(self._queue) >= MAX_QUEUED:
            log.error("audit entry lost: endpoint.disabled of %s (queue full)", event.endpoint_id)
            return
        self._queue.append(event)
        self._queued.set()

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Record what queues until ``stop``, then what is left."""
        while not stop.is_set():
            await queued_or_stopped(self._queued, stop)
            await self._flush_logged(ops)
        await self._flush_logged(ops)

    async def _flush_logged(self, ops: Operations) -> None:
        """A failure is logged and the task goes on: it must not end with one bad batch."""
        try:
            await self.flush(ops)
        except Exception:
            log.exception("audit entries of the worker's disables lost")

    async def flush(self, ops: Operations) -> int:
        """Record every queued disable, one per endpoint; how many were recorded."""
        self._queued.clear()
        batch: dict[str, EndpointDisabled] = {}
        while self._queue:
            event = self._queue.popleft()
            batch.setdefault(event.endpoint_id, event)
        for event in batch.values():
            action, app_id = a.endpoint_action(event.app_id, a.DISABLED)
            summary = {"fields": ["disabled"], "trigger": "gone"}
            await record(
                ops, SYSTEM, action, app_id=app_id, target_id=event.endpoint_id, summary=summary
            )
        return len(batch)
