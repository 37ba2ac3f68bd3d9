"""The delivery worker's loop: claim due deliveries, start their attempts, stay alive, stop.

One loop claims batches while there is free capacity; each claimed delivery (or one a
publish hands over) becomes a task that makes one attempt. The pieces it drives each read
on their own: ``Admission`` (``admission.py``) decides per endpoint what may be claimed,
handed over and attempted; ``AttemptRunner`` (``attempt.py``) signs and sends; ``Recorder``
(``recorder.py``) writes the results back in batches. A claimed delivery is leased: if this
process dies, the lease runs out and any worker takes it again, which is what makes
delivery at-least-once across ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import heapq
import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookline.delivery import fallback
from hookline.delivery.admission import Admission
from hookline.delivery.attempt import AttemptRunner
from hookline.delivery.disabled import EndpointStates
from hookline.delivery.failing import FailingTracker
from hookline.delivery.pacing import Pacing
from hookline.delivery.recorder import SHUTDOWN_GRACE_SECONDS, STORE_RETRY_SECONDS, Recorder
from hookline.domain import ids
from hookline.domain.admission import EndpointLimits
from hookline.domain.breaker import BreakerSettings, ProbeGrant
from hookline.domain.clock import utcnow
from hookline.domain.errors import Unavailable
from hookline.domain.models import ClaimedDelivery
from hookline.domain.retry import RetrySchedule
from hookline.domain.signing import HeaderStyle
from hookline.instrumentation import NO_INSTRUMENTATION, DeliveryHeld, Instrumentation, Tracing
from hookline.storage.base import Deferral, Diversion, LeaseOffer, Store
from hookline.transport import Transport

log = logging.getLogger("hookline.worker")

CLAIM_BATCH = 100
MAX_DUE_TRACKED = 4096
"""Retry times a worker remembers to wake for; past that, retries wait for the next poll."""

PROBE_GRACE_SECONDS = 5.0
"""A probe's lease is one attempt's timeout and this much more."""


@dataclass(frozen=True)
class WorkerConfig:
    retry_schedule: RetrySchedule
    request_timeout: float
    lease_seconds: float
    poll_interval: float
    max_in_flight: int
    retry_max_age: float | None = None
    heartbeat_interval: float = 5.0
    stall_timeout: float = 20.0
    endpoint_max_in_flight: int = 32
    breaker: BreakerSettings = BreakerSettings()
    signature_headers: HeaderStyle = HeaderStyle.WEBHOOK


class Worker:
    """Runs until ``stop()``; then finishes in-flight attempts and records them."""

    def __init__(
        self,
        store: Store,
        transport: Transport,
        config: WorkerConfig,
        *,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
        tracing: Tracing | None = None,
    ) -> None:
        """``instrumentation`` hears attempts, exhausted deliveries, disabled endpoints and
        breakers opening and closing; ``tracing`` records a span per attempt."""
        self._store = store
        self._config = config
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._in_flight: dict[asyncio.Task[None], ClaimedDelivery] = {}
        """Each delivery's task and the delivery, whose lease the heartbeat renews."""
        self._endpoints = EndpointStates()
        """Endpoints disabled since their deliveries were read: held back at attempt start."""
        self.worker_id = ids.new_id(ids.WORKER)
        self._refill_at = max(1, min(CLAIM_BATCH, config.max_in_flight // 4))
        self._reserved = 0
        """Slots offered to publish transactions that have not committed yet."""
        self._due: list[float] = []
        """A heap of the times (epoch seconds) of retries this worker scheduled, and of
        deliveries a publish in this process scheduled, that it has not claimed since: the
        idle wait ends at the first rather than at the next poll."""
        self._recorder = Recorder(store, clock, self.wake, instrumentation)
        self._instrumentation = instrumentation
        self._holds_heard = instrumentation.wants(DeliveryHeld)
        self._failing = FailingTracker(clock)
        self._admission = Admission(
            EndpointLimits(config.endpoint_max_in_flight),
            breaker=config.breaker,
            clock=clock,
            wake=self.wake,
            save_circuit=self._recorder.save_circuit,
            instrumentation=instrumentation,
            pacing=Pacing(store.take_rate_slots, store.slow_endpoint, clock),
        )
        self._recorder.circuit_saved = self._admission.circuit_saved
        self._attempts = AttemptRunner(
            transport,
            retry_schedule=config.retry_schedule,
            retry_max_age=config.retry_max_age,
            request_timeout=config.request_timeout,
            clock=clock,
            rng=rng or random.Random(),
            signature_headers=config.signature_headers,
            instrumentation=instrumentation,
            tracing=tracing,
        )

    def wake(self) -> None:
        """Tell the worker new work may be due (a resend or recover in this process, or a
        notification from the database)."""
        self._wake.set()

    def endpoint_changed(self, endpoint_id: str, version: int, disabled: bool) -> None:
        """Learn an endpoint's new state: from the operation that changed it in this process
        (before it answers), or from another process's change through the store."""
        self._endpoints.observe(endpoint_id, version, disabled)

    def wake_at(self, when: datetime) -> None:
        """Claim again at ``when``, when deliveries this process scheduled fall due (a
        message's deliverAt), rather than at the next poll after it."""
        self._expect(when)
        self._wake.set()

    def _expect(self, when: datetime) -> None:
        if len(self._due) < MAX_DUE_TRACKED:
            heapq.heappush(self._due, when.timestamp())

    def offer(self) -> LeaseOffer | None:
        """Reserve the free slots for deliveries a publish transaction will hand over."""
        if self._stopping.is_set():
            return None
        slots = self._free_slots()
        if slots <= 0:
            return None
        self._reserved += slots
        return LeaseOffer(
            worker_id=self.worker_id,
            lease_token=uuid.uuid4().hex,
            lease_until=self._clock() + timedelta(seconds=self._config.lease_seconds),
            slots=slots,
            admission=self._admission.snapshot(slots),
        )

    def accept(
        self, offer: LeaseOffer, claimed: Sequence[ClaimedDelivery], left_for: Collection[str]
    ) -> None:
        """Start what a committed publish handed over. What was left pending for a busy or
        blocked endpoint waits until that endpoint frees up; anything else is claimed now."""
        self._reserved -= offer.slots
        for item in claimed:
            self._start(item)
        if left_for and self._admission.left_pending(left_for):
            self._wake.set()
        self._slot_free.set()

    def _free_slots(self) -> int:
        return self._config.max_in_flight - len(self._in_flight) - self._reserved

    def stop(self) -> None:
        self._stopping.set()
        self._admission.stop()
        self._wake.set()
        self._slot_free.set()

    async def run(self) -> None:
        await self._beat()
        recorder = asyncio.create_task(self._recorder.run(), name="hookline-recorder")
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="hookline-heartbeat"),
            asyncio.create_task(
                self._store.listen(self.wake, self.endpoint_changed), name="hookline-listen"
            ),
        ]
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            self._recorder.close()
            await self._recorder.finish(recorder)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(Unavailable):
                await self._store.unregister_worker(self.worker_id)

    async def _beat(self) -> None:
        """Prove this worker alive, hand dead workers' deliveries back to the queue, and learn
        the breakers other workers opened and the applications' policies (so a policy
        change reaches the worker within a heartbeat interval)."""
        now = self._clock()
        try:
            await self._store.heartbeat(self.worker_id, now)
            if self._in_flight:
                lease_until = now + timedelta(seconds=self._config.lease_seconds)
                held = list(self._in_flight.values())
                tokens = {item.lease_token for item in held}
                await self._store.renew_leases(self.worker_id, tokens, lease_until)
                endpoint_ids = {item.endpoint.id for item in held}
                self._endpoints.observe_all(await self._store.endpoint_states(endpoint_ids))
                self._endpoints.keep_only(endpoint_ids)
            stalled_before = now - timedelta(seconds=self._config.stall_timeout)
            await self._store.release_stalled(stalled_before, now)
            self._admission.adopt(await self._store.open_circuits(now))
            self._attempts.adopt_application_policies(await self._store.application_policies())
            self._admission.adopt_slowdowns(await self._store.slowed_endpoints(now))
        except Unavailable as exc:
            log.warning("heartbeat failed: %s", exc)

    async def _heartbeat_loop(self) -> None:
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._stopping.wait(), timeout=self._config.heartbeat_interval
                )
            if not self._stopping.is_set():
                await self._beat()

    async def _claim_loop(self) -> None:
        while not self._stopping.is_set():
            free = self._free_slots()
            if free < self._refill_at and (self._in_flight or self._reserved):
                # Claim in batches: one claim per freed slot would cost a transaction each.
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            self._wake.clear()
            try:
                claimed = await self._claim(min(free, CLAIM_BATCH))
            except Unavailable as exc:
                log.warning("cannot claim deliveries, retrying: %s", exc)
                await self._sleep(STORE_RETRY_SECONDS)
                continue
            for item in claimed:
                self._start(item)
            if not claimed:
                # Idle until a publish, a freed endpoint or a retry falls due wakes us.
                await self._sleep(self._idle_seconds())

    def _idle_seconds(self) -> float:
        """The poll interval, or less when a retry this worker scheduled falls due sooner:
        a claim finds only what is due, so a wait past that would only make it late."""
        if not self._due:
            return self._config.poll_interval
        wait = self._due[0] - self._clock().timestamp()
        return max(0.0, min(self._config.poll_interval, wait))

    async def _claim(self, wanted: int) -> list[ClaimedDelivery]:
        """Lease up to ``wanted`` due deliveries, as admission allows per endpoint."""
        now = self._clock()
        due, at = self._due, now.timestamp()
        while due and due[0] <= at:
            heapq.heappop(due)  # this claim looks for it
        plan = self._admission.plan_claim()
        return await self._store.claim_due(
            wanted,
            now,
            now + timedelta(seconds=self._config.lease_seconds),
            self.worker_id,
            plan.skip,
            plan.per_endpoint,
            dict(plan.caps),
        )

    def _start(self, item: ClaimedDelivery) -> None:
        self._admission.learn(item.endpoint)
        self._admission.started(item.endpoint.id)
        # A fresh context: a delivery handed over by a publish would otherwise inherit the
        # publish's request id (and trace) from the request's task, and log under it.
        task = asyncio.create_task(self._deliver(item), context=contextvars.Context())
        self._in_flight[task] = item
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(task, None)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _deliver(self, claimed: ClaimedDelivery) -> None:
        """One attempt, never more than the endpoint's cap at once; a claim batch or a
        hand-over may hold a few more, which wait at its gate with their leases renewed by
        the heartbeat. Past the gate, a rate-limited endpoint's delivery waits for its send
        slot (so a slot is taken only when the delivery can be sent at once). A delivery its
        endpoint's breaker holds, or still waiting for a slot when the worker stops, is put
        back unattempted."""
        admission = self._admission
        endpoint_id = claimed.endpoint.id
        gate = admission.gate(endpoint_id)
        try:
            paced = admission.paced(endpoint_id)
            # A paced delivery bids for its breaker's probe only once it has its slot (_pace).
            until = admission.hold(endpoint_id) if paced else await self._breaker_hold(endpoint_id)
            if until is not None:
                self._recorder.put(self._held(claimed, until))
                return
            await gate.enter()
            try:
                if paced:
                    until = await self._pace(endpoint_id)
                    if until is not None:
                        self._recorder.put(self._held(claimed, until))
                        return
                if self._endpoints.blocks(claimed.endpoint):
                    # Disabled while held: back to pending, unattempted, for a re-enable or
                    # a replay to deliver.
                    self._recorder.put(Deferral(claimed, self._clock()))
                    return
                started = self._clock()
                result = await self._attempts.send(claimed, started)
            finally:
                gate.leave()
            admission.record(claimed.endpoint, result.status_code, result.retry_after)
            if result.retry_after is not None:
                admission.answered(
                    endpoint_id, result.status_code, result.retry_after, result.duration_ms
                )
            outcome = self._attempts.outcome(claimed, result, started)
            if outcome.disable_endpoint:
                self._endpoints.observe(endpoint_id, claimed.endpoint.version + 1, True)
            self._recorder.put(outcome)
            change = self._failing.record(endpoint_id, claimed.endpoint.app_id, result.status_code)
            if change is not None:
                self._recorder.note_failing(change)
            if outcome.next_attempt_at is not None:
                self._expect(outcome.next_attempt_at)
        finally:
            admission.finished(endpoint_id)

    async def _pace(self, endpoint_id: str) -> datetime | None:
        """Wait for the endpoint's send slot; None to send now, else when the delivery is due
        again (the worker is stopping, or the endpoint's breaker opened meanwhile)."""
        if not await self._admission.pace(endpoint_id):
            return self._clock()
        return await self._breaker_hold(endpoint_id)

    async def _breaker_hold(self, endpoint_id: str) -> datetime | None:
        """None if an attempt may start now; else when the delivery is due again. A
        half-open circuit's probe is bid for here, so one delivery across all workers is it."""
        admission = self._admission
        if admission.wants_probe(endpoint_id):
            granted = await self._bid_for_probe(endpoint_id)
            return None if granted else admission.hold(endpoint_id)
        return admission.hold(endpoint_id)

    def _held(self, claimed: ClaimedDelivery, until: datetime) -> Deferral | Diversion:
        """A delivery its breaker holds: put back until ``until``, or, once the circuit has
        been open long enough, given to the endpoint's fallback destination."""
        if self._holds_heard:
            self._instrumentation.emit(DeliveryHeld(claimed.endpoint.app_id, claimed.endpoint.id))
        if self._admission.diverts(claimed.endpoint):
            stand_in = fallback.stand_in(claimed, self._clock())
            if stand_in is not None:
                return Diversion(claimed, stand_in, until)
        return Deferral(claimed, until)

    async def _bid_for_probe(self, endpoint_id: str) -> bool:
        """Ask the store for a half-open circuit's one probe; True if this delivery is it
        (or the circuit turned out closed). Its lease outlasts one attempt, so a worker that
        dies mid-probe holds the endpoint only that long."""
        now = self._clock()
        probe_until = now + timedelta(seconds=self._config.request_timeout + PROBE_GRACE_SECONDS)
        try:
            grant, state = await self._store.claim_probe(
                endpoint_id, self.worker_id, now, probe_until
            )
        except Unavailable as exc:
            log.warning("cannot bid for the probe of %s: %s", endpoint_id, exc)
            self._admission.probe_answer(endpoint_id, None, None)
            return False
        except BaseException:
            # Cancelled or broken: the bid must not stay marked under way, or this worker
            # would hold the endpoint for good.
            self._admission.probe_answer(endpoint_id, None, None)
            raise
        self._admission.probe_answer(endpoint_id, grant, state)
        return grant is not ProbeGrant.TAKEN

    async def _drain(self) -> None:
        """Finish attempts in flight, and those a publish still committing hands over."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._config.request_timeout + SHUTDOWN_GRACE_SECONDS
        while (self._in_flight or self._reserved) and loop.time() < deadline:
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=deadline - loop.time())
            else:
                self._slot_free.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._slot_free.wait(), deadline - loop.time())
