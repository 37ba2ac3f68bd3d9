"""Automatic recovery: when an endpoint that was failing answers again, the deliveries that
failed for good meanwhile are sent again, for endpoints whose policy asks for it
(``policy.recovery.auto``, docs/delivery.md).

The worker's recorder tells of each failing period's end once (``EndpointRecovered``, from
the store's ``mark_endpoints_healthy``, so one worker of many is told); this hook queues it
inline and ``run`` starts a recover task for it, the same task as Svix's ``recover``, for
the deliveries that ended (failed for good) since the failing period began, recorded in the
audit log as the system's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import timedelta

from hookline.domain.errors import InvalidRequest, NotFound, Unavailable
from hookline.domain.tasks import TaskKind
from hookline.instrumentation import EndpointRecovered, Event
from hookline.operations import tasks
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM
from hookline.operations.queues import queued_or_stopped

log = logging.getLogger("hookline.recovery")

LOOKBACK = timedelta(hours=24)
"""How long before the first failure the messages the task reads may have been created:
a message created earlier can still have been failing its retries during the outage (its
delivery ended in it, which ``failed_since`` checks)."""
RETRY_SECONDS = 1.0
"""How long to wait before trying again while the store is unavailable."""
MAX_QUEUED = 10_000
"""Recoveries waiting for their task; more at once means the store is down, and a lost
one is logged (the owner can still recover by hand)."""


class AutoRecovery:
    """Hears ``EndpointRecovered``; ``run`` starts the recover tasks the policies ask for."""

    events: frozenset[type[Event]] = frozenset({EndpointRecovered})

    def __init__(self) -> None:
        self._queue: deque[EndpointRecovered] = deque()
        self._queued = asyncio.Event()

    def __call__(self, event: Event) -> None:
        if not isinstance(event, EndpointRecovered):
            return
        if len(self._queue) >= MAX_QUEUED:
            log.error("automatic recovery of %s skipped (queue full)", event.endpoint_id)
            return
        self._queue.append(event)
        self._queued.set()

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Start what queues until ``stop``, then what is left."""
        while not stop.is_set():
            await queued_or_stopped(self._queued, stop)
            if not await self.flush(ops):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=RETRY_SECONDS)
        await self.flush(ops)

    async def flush(self, ops: Operations) -> bool:
        """Start a task for each queued recovery its endpoint's policy asks for. False when
        the store is unavailable: what is left stays queued for the next try. Any other
        failure is logged and the rest go on."""
        self._queued.clear()
        while self._queue:
            event = self._queue[0]
            try:
                await recover(ops, event)
            except Unavailable as exc:
                log.warning("automatic recovery waits for the store: %s", exc)
                self._queued.set()
                return False
            except Exception:
                log.exception("automatic recovery of endpoint %s failed", event.endpoint_id)
            self._queue.popleft()
        return True


async def recover(ops: Operations, event: EndpointRecovered) -> bool:
    """Start the recover task for ``event`` if the endpoint (still there) asks for it."""
    endpoint = await ops.store.get_endpoint(event.app_id, event.endpoint_id)
    if endpoint is None:
        return False
    policy = endpoint.policy.recovery
    if policy is None or not policy.auto:
        return False
    request = tasks.TaskRequest(
        kind=TaskKind.RECOVER,
        since=event.failing_since - LOOKBACK,
        endpoint=endpoint.id,
        failed_since=event.failing_since,
    )
    try:
        task = await tasks.start(ops, SYSTEM, event.app_id, request)
    except (InvalidRequest, NotFound) as exc:
        log.warning("automatic recovery of endpoint %s not started: %s", endpoint.id, exc)
        return False
    log.info(
        "endpoint %s answers again after failing since %s: recover task %s started",
        endpoint.id,
        event.failing_since.isoformat(),
        task.id,
    )
    return True
