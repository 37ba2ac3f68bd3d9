"""``Recorder``: writes a worker's attempt results back to the store, in batches.

Each finished attempt (or delivery put back unattempted, or breaker opened or closed) is
queued; one task writes what has
queued in one call to the store, so the database sees few large transactions instead of many
small ones. A batch is retried until it lands: a lost result would mean a lost attempt log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hookline.delivery.failing import FailingChange
from hookline.domain.breaker import CircuitState
from hookline.domain.errors import Unavailable
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    EndpointDisabled,
    EndpointRecovered,
    Instrumentation,
)
from hookline.storage.base import AttemptOutcome, Deferral, Diversion, Store

log = logging.getLogger("hookline.worker")

RECORD_BATCH = 500
STORE_RETRY_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class CircuitChange:
    """An endpoint's breaker opened or re-opened (``state``), or closed (None)."""

    endpoint_id: str
    state: CircuitState | None


Result = AttemptOutcome | Deferral | Diversion | CircuitChange | FailingChange


class Recorder:
    """Queue results with ``put``; ``run`` writes them until ``close``; ``finish`` waits."""

    def __init__(
        self,
        store: Store,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        self._store = store
        self._instrumentation = instrumentation
        self._disables_heard = instrumentation.wants(EndpointDisabled)
        self._recoveries_heard = instrumentation.wants(EndpointRecovered)
        self._clock = clock
        self._wake = wake
        self._queue: asyncio.Queue[Result | None] = asyncio.Queue()
        self.put: Callable[[AttemptOutcome | Deferral | Diversion], None] = self._queue.put_nowait
        """Queue one result (the queue's own method: one call per delivery, nothing more)."""
        self._recording = 0
        """Results in the batch being written (and retried) now."""
        self._circuit_changes = 0
        """Circuit changes queued and not written yet: batches without any skip looking."""
        self._failing_changes = 0
        """Failing-period changes queued and not written yet (the same shortcut)."""
        self.circuit_saved: Callable[[str], None] = lambda endpoint_id: None
        """Told of each circuit change once it is written (admission's ``circuit_saved``)."""

    def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        """Queue a breaker's transition, for every worker to learn from the store."""
        self._circuit_changes += 1
        self._queue.put_nowait(CircuitChange(endpoint_id, state))

    def note_failing(self, change: FailingChange) -> None:
        """Queue the start or end of an endpoint's failing period (auto-disable)."""
        self._failing_changes += 1
        self._queue.put_nowait(change)

    def close(self) -> None:
        """Nothing more will be queued: ``run`` returns once the queue is written."""
        self._queue.put_nowait(None)

    async def run(self) -> None:
        """Write results in batches until the ``None`` that ``close`` queues."""
        finished = False
        while not finished:
            batch: list[Result] = []
            item = await self._queue.get()
            while True:
                if item is None:
                    finished = True
                    break
                batch.append(item)
                if len(batch) >= RECORD_BATCH or self._queue.empty():
                    break
                item = self._queue.get_nowait()
            if batch:
                await self._record(batch)

    async def finish(self, task: asyncio.Task[None]) -> None:
        """Let ``task`` (running ``run``) write what is left, for at most a few seconds.

        While running, a batch is retried until it lands. A store that keeps refusing must
        not hold a stopping process forever, though (a process manager would kill it anyway):
        what is still unwritten then is given up, and its deliveries, still leased, go out
        again once their leases run out.
        """
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_GRACE_SECONDS)
        if done:
            await task
            return
        unwritten = self._recording + self._queue.qsize() - 1  # less the closing None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        log.error(
            "stopping with %d attempt results unwritten: the store refused them for %.0f s; "
            "their deliveries are sent again when their leases run out",
            unwritten,
            SHUTDOWN_GRACE_SECONDS,
        )

    async def _record(self, batch: list[Result]) -> None:
        """Write a batch, retrying until it lands."""
        outcomes = [item for item in batch if isinstance(item, AttemptOutcome)]
        deferrals = [item for item in batch if isinstance(item, Deferral)]
        diversions = [item for item in batch if isinstance(item, Diversion)]
        circuits: list[CircuitChange] = []
        if self._circuit_changes:
            circuits = [item for item in batch if isinstance(item, CircuitChange)]
            self._circuit_changes -= len(circuits)
        changes: list[FailingChange] = []
        if self._failing_changes:
            changes = [c for c in batch if isinstance(c, FailingChange)]
            self._failing_changes -= len(changes)
        # An endpoint that changed twice in the batch: its last change wins.
        failing = {c.endpoint_id: c for c in changes}
        # What the logs count: attempt results, not the failing-period notes beside them.
        results = len(batch) - len(changes)
        self._recording = results
        landed = outcomes
        while True:
            try:
                if outcomes:
                    await self._store.complete(outcomes)
                    outcomes = []
                if deferrals:
                    await self._store.defer(deferrals, self._clock())
                    deferrals = []
                if diversions:
                    await self._store.divert(diversions)
                    diversions = []
                while circuits:
                    await self._store.save_circuit(circuits[0].endpoint_id, circuits[0].state)
                    self.circuit_saved(circuits[0].endpoint_id)
                    del circuits[0]
                if failing:
                    await self._write_failing(list(failing.values()))
                    failing = {}
                break
            except Unavailable as exc:
                log.warning("cannot record %d attempts, retrying: %s", results, exc)
            except Exception:
                log.exception("recording %d attempts failed, retrying", results)
            await asyncio.sleep(STORE_RETRY_SECONDS)
        self._recording = 0
        if self._disables_heard:
            self._announce_disabled(landed)
        if any(_brings_work(item) for item in batch):
            self._wake()

    async def _write_failing(self, changes: list[FailingChange]) -> None:
        """Failing periods that began in this batch start at its earliest failure."""
        started = [c for c in changes if c.failing]
        if started:
            since = min(c.at for c in started)
            await self._store.mark_endpoints_failing([c.endpoint_id for c in started], since)
        ended = {c.endpoint_id: c for c in changes if not c.failing}
        if ended:
            periods = await self._store.mark_endpoints_healthy(list(ended))
            if self._recoveries_heard:
                for endpoint_id, since in periods.items():
                    change = ended[endpoint_id]
                    recovered = EndpointRecovered(change.app_id, endpoint_id, since, change.at)
                    self._instrumentation.emit(recovered)

    def _announce_disabled(self, outcomes: list[AttemptOutcome]) -> None:
        """Endpoints these outcomes disabled (they answered 410 Gone), once they landed."""
        for item in outcomes:
            if item.disable_endpoint:
                endpoint = item.claimed.endpoint
                gone = EndpointDisabled(
                    endpoint.app_id, endpoint.id, "it answered 410 Gone", endpoint_uid=endpoint.uid
                )
                self._instrumentation.emit(gone)


def _brings_work(item: Result) -> bool:
    """Whether a claim may find something new now that ``item`` is written: a retry that
    falls due, a delivery written for a fallback destination, or the next delivery of an
    ordered endpoint's sequence, which only a claim takes (and no notification announces, as
    nothing pending was written)."""
    if isinstance(item, Diversion):
        return True
    if not isinstance(item, AttemptOutcome | Deferral):
        return False
    if item.claimed.endpoint.policy.ordering is not None:
        return True
    return isinstance(item, AttemptOutcome) and (
        item.next_attempt_at is not None or item.fallback is not None
    )
