"""The delivery worker: lease due deliveries, sign, send, record, repeat.

One loop claims batches while there is free capacity; each claimed delivery becomes a
task that makes one attempt; finished attempts are written back in batches by a
recorder task, so the database sees few large transactions instead of many small ones.
A claimed delivery is leased: if this process dies, the lease runs out and any worker
takes it again, which is what makes delivery at-least-once across ``kill -9``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hookline.delivery.gate import Gate
from hookline.domain import ids
from hookline.domain.breaker import (
    DEFAULT_COOLDOWN_SECONDS,
    DEFAULT_THRESHOLD,
    Breaker,
    is_endpoint_failure,
)
from hookline.domain.clock import utcnow
from hookline.domain.errors import Unavailable
from hookline.domain.models import Attempt, AttemptTrigger, ClaimedDelivery, MessageStatus
from hookline.domain.outcome import Verdict, decide
from hookline.domain.retry import RetrySchedule
from hookline.domain.signing import sign
from hookline.storage.base import AttemptOutcome, Deferral, LeaseOffer, Store
from hookline.transport import HttpResult, Transport

log = logging.getLogger("hookline.worker")

CLAIM_BATCH = 100
RECORD_BATCH = 500
STORE_RETRY_SECONDS = 1.0
SHUTDOWN_GRACE_SECONDS = 5.0
HANDOFF_QUEUE_FACTOR = 2
"""A publish may hand this worker up to this many times an endpoint's in-flight cap: the
deliveries beyond the cap wait at the endpoint's gate, leased and in memory, where they
would otherwise be written pending and claimed back a moment later."""


@dataclass(frozen=True)
class WorkerConfig:
    retry_schedule: RetrySchedule
    request_timeout: float
    lease_seconds: float
    poll_interval: float
    max_in_flight: int
    log_attempts: bool = False
    heartbeat_interval: float = 5.0
    stall_timeout: float = 20.0
    endpoint_max_in_flight: int = 32
    breaker_threshold: int = DEFAULT_THRESHOLD
    breaker_cooldown: float = DEFAULT_COOLDOWN_SECONDS


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
    ) -> None:
        self._store = store
        self._transport = transport
        self._config = config
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._slot_free = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._outcomes: asyncio.Queue[AttemptOutcome | Deferral | None] = asyncio.Queue()
        self._recording = 0
        """Results in the batch being written (and retried) now."""
        self.worker_id = ids.new_id(ids.WORKER)
        self._refill_at = max(1, min(CLAIM_BATCH, config.max_in_flight // 4))
        self._endpoint_load: dict[str, int] = {}
        self._endpoint_gates: dict[str, Gate] = {}
        self._skipped: set[str] = set()
        """Endpoints a claim passed over for being at their cap: due rows may be waiting."""
        self._reserved = 0
        self._breakers: dict[str, Breaker] = {}

    def wake(self) -> None:
        """Tell the worker new work may be due (a resend or recover in this process, or a
        notification from the database)."""
        self._wake.set()

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
            endpoint_cap=self._handoff_cap(),
            endpoint_load=self._load_with_blocked(),
        )

    def accept(
        self, offer: LeaseOffer, claimed: Sequence[ClaimedDelivery], left_for: Collection[str]
    ) -> None:
        """Start what a committed publish handed over. What was left pending for a busy or
        blocked endpoint waits until that endpoint frees up; anything else is claimed now."""
        self._reserved -= offer.slots
        for item in claimed:
            self._start(item)
        if left_for:
            held = set(self._busy_endpoints())
            self._skipped.update(held.intersection(left_for))
            if not held.issuperset(left_for):
                self._wake.set()
        self._slot_free.set()

    def _free_slots(self) -> int:
        return self._config.max_in_flight - len(self._in_flight) - self._reserved

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._slot_free.set()

    async def run(self) -> None:
        await self._beat()
        recorder = asyncio.create_task(self._record_loop(), name="hookline-recorder")
        helpers = [
            asyncio.create_task(self._heartbeat_loop(), name="hookline-heartbeat"),
            asyncio.create_task(self._store.listen(self.wake), name="hookline-listen"),
        ]
        try:
            await self._claim_loop()
        finally:
            await self._drain()
            self._outcomes.put_nowait(None)
            await self._finish_recording(recorder)
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            with contextlib.suppress(Unavailable):
                await self._store.unregister_worker(self.worker_id)

    async def _beat(self) -> None:
        """Prove this worker alive, and hand dead workers' deliveries back to the queue."""
        now = self._clock()
        try:
            await self._store.heartbeat(self.worker_id, now)
            if self._in_flight:
                lease_until = now + timedelta(seconds=self._config.lease_seconds)
                await self._store.renew_leases(self.worker_id, lease_until)
            stalled_before = now - timedelta(seconds=self._config.stall_timeout)
            await self._store.release_stalled(stalled_before, now)
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
            wanted = min(free, CLAIM_BATCH)
            self._wake.clear()
            now = self._clock()
            busy = self._busy_endpoints()
            self._skipped.update(busy)
            try:
                claimed = await self._store.claim_due(
                    wanted,
                    now,
                    now + timedelta(seconds=self._config.lease_seconds),
                    self.worker_id,
                    busy,
                    self._config.endpoint_max_in_flight,
                )
            except Unavailable as exc:
                log.warning("cannot claim deliveries, retrying: %s", exc)
                await self._sleep(STORE_RETRY_SECONDS)
                continue
            for item in claimed:
                self._start(item)
            if not claimed:
                # Idle until a publish, a freed endpoint or a retry falls due wakes us.
                await self._sleep(self._config.poll_interval)

    def _start(self, item: ClaimedDelivery) -> None:
        endpoint_id = item.endpoint.id
        self._endpoint_load[endpoint_id] = self._endpoint_load.get(endpoint_id, 0) + 1
        task = asyncio.create_task(self._deliver(item))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_free.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("delivery task failed", exc_info=task.exception())

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def _busy_endpoints(self) -> list[str]:
        """Endpoints at their in-flight cap or behind an open breaker: claims skip them, so
        a slow or dead endpoint cannot fill this worker with requests that all wait on it."""
        cap = self._config.endpoint_max_in_flight
        busy = {endpoint for endpoint, load in self._endpoint_load.items() if load >= cap}
        return list(busy.union(self._blocked_endpoints()))

    def _blocked_endpoints(self) -> list[str]:
        now = self._clock().timestamp()
        return [endpoint for endpoint, breaker in self._breakers.items() if breaker.blocks(now)]

    def _handoff_cap(self) -> int:
        return self._config.endpoint_max_in_flight * HANDOFF_QUEUE_FACTOR

    def _load_with_blocked(self) -> dict[str, int]:
        """Started deliveries per endpoint, with blocked endpoints shown full to the handoff."""
        cap = self._handoff_cap()
        load = dict(self._endpoint_load)
        for endpoint in self._blocked_endpoints():
            load[endpoint] = max(cap, load.get(endpoint, 0))
        return load

    def _gate(self, endpoint_id: str) -> Gate:
        gate = self._endpoint_gates.get(endpoint_id)
        if gate is None:
            gate = self._endpoint_gates[endpoint_id] = Gate(self._config.endpoint_max_in_flight)
        return gate

    async def _deliver(self, claimed: ClaimedDelivery) -> None:
        """One attempt, never more than the endpoint's cap at once; a claim batch may hold a
        few more, which wait here with their leases renewed by the heartbeat."""
        endpoint_id = claimed.endpoint.id
        gate = self._gate(endpoint_id)
        try:
            breaker = self._breakers.get(endpoint_id)
            if breaker is not None:
                now = self._clock().timestamp()
                if not breaker.admit(now):
                    until = datetime.fromtimestamp(breaker.hold_until(now), UTC)
                    self._outcomes.put_nowait(Deferral(claimed, until))
                    return
            await gate.enter()
            try:
                started = self._clock()
                result = await self._send(claimed, started)
            finally:
                gate.leave()
            self._track_health(endpoint_id, result.status_code)
            self._outcomes.put_nowait(self._outcome(claimed, result, started))
        finally:
            load = self._endpoint_load.get(endpoint_id, 1) - 1
            if load < self._config.endpoint_max_in_flight and endpoint_id in self._skipped:
                self._skipped.discard(endpoint_id)
                self._wake.set()  # no longer busy: its due deliveries may be claimed again
            if load > 0:
                self._endpoint_load[endpoint_id] = load
            else:
                self._endpoint_load.pop(endpoint_id, None)
                self._endpoint_gates.pop(endpoint_id, None)

    def _track_health(self, endpoint_id: str, status_code: int) -> None:
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            if not is_endpoint_failure(status_code):
                return
            breaker = self._breakers[endpoint_id] = Breaker(
                threshold=self._config.breaker_threshold,
                base_cooldown=self._config.breaker_cooldown,
            )
        was_closed = breaker.closed
        breaker.record(status_code, self._clock().timestamp())
        if breaker.closed and breaker.failures == 0:
            del self._breakers[endpoint_id]
            if not was_closed:
                log.info("endpoint %s answers again; its breaker is closed", endpoint_id)
                self._wake.set()
        elif was_closed and not breaker.closed:
            log.warning(
                "endpoint %s failed %d times in a row; holding its deliveries for %.0fs",
                endpoint_id,
                breaker.failures,
                breaker.cooldown,
            )

    async def _send(self, claimed: ClaimedDelivery, now: datetime) -> HttpResult:
        msg, endpoint = claimed.message, claimed.endpoint
        if msg.payload is None:
            return HttpResult(0, b"", "message content was expunged", 0, None)
        timestamp = int(now.timestamp())
        headers = dict(endpoint.headers)
        headers["webhook-id"] = msg.id
        headers["webhook-timestamp"] = str(timestamp)
        headers["webhook-signature"] = sign(
            msg.id, timestamp, msg.payload, endpoint.signing_secrets(now)
        )
        headers["content-type"] = "application/json"
        return await self._transport.post(
            endpoint.url, msg.payload, headers, self._config.request_timeout
        )

    def _outcome(
        self, claimed: ClaimedDelivery, result: HttpResult, started: datetime
    ) -> AttemptOutcome:
        manual = claimed.trigger is AttemptTrigger.MANUAL
        scheduled_attempts = claimed.attempt_count + (0 if manual else 1)
        decision = decide(
            result.status_code,
            result.retry_after,
            max(scheduled_attempts, 1),
            self._config.retry_schedule,
            started,
            self._rng,
        )
        succeeded = decision.verdict is Verdict.SUCCEEDED
        next_at = None
        if decision.verdict is Verdict.RETRY:
            status = MessageStatus.PENDING
            next_at = self._clock() + timedelta(seconds=decision.delay_seconds or 0.0)
        else:
            status = MessageStatus.SUCCESS if succeeded else MessageStatus.FAIL
        response = result.body.decode("utf-8", errors="replace") if result.status_code else ""
        attempt = Attempt(
            id=ids.new_id(ids.ATTEMPT),
            app_id=claimed.endpoint.app_id,
            msg_id=claimed.message.id,
            endpoint_id=claimed.endpoint.id,
            url=claimed.endpoint.url,
            status=MessageStatus.SUCCESS if succeeded else MessageStatus.FAIL,
            response_status_code=result.status_code,
            response=response if result.status_code else (result.error or ""),
            response_duration_ms=result.duration_ms,
            trigger=claimed.trigger,
            timestamp=started,
        )
        if self._config.log_attempts:
            log.info(
                "attempt %s %s -> %s status=%s %dms %s%s",
                attempt.id,
                attempt.msg_id,
                attempt.endpoint_id,
                result.status_code,
                result.duration_ms,
                status.text,
                f" ({result.error})" if result.error else "",
            )
        return AttemptOutcome(
            claimed=claimed,
            attempt=attempt,
            delivery_status=status,
            next_attempt_at=next_at,
            scheduled_attempts=scheduled_attempts,
            disable_endpoint=decision.verdict is Verdict.ENDPOINT_GONE,
        )

    async def _record_loop(self) -> None:
        """Write outcomes in batches until the ``None`` that ``run`` queues after draining."""
        finished = False
        while not finished:
            batch: list[AttemptOutcome | Deferral] = []
            item = await self._outcomes.get()
            while True:
                if item is None:
                    finished = True
                    break
                batch.append(item)
                if len(batch) >= RECORD_BATCH or self._outcomes.empty():
                    break
                item = self._outcomes.get_nowait()
            if batch:
                await self._record(batch)

    async def _finish_recording(self, recorder: asyncio.Task[None]) -> None:
        """Let the recorder write what is left, for at most a few seconds once stopping.

        While running, a batch is retried until it lands. A store that keeps refusing must
        not hold a stopping process forever, though (a process manager would kill it anyway):
        what is still unwritten then is given up, and its deliveries, still leased, go out
        again once their leases run out.
        """
        done, _ = await asyncio.wait({recorder}, timeout=SHUTDOWN_GRACE_SECONDS)
        if done:
            await recorder
            return
        unwritten = self._recording + self._outcomes.qsize() - 1  # less the closing None
        recorder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await recorder
        log.error(
            "stopping with %d attempt results unwritten: the store refused them for %.0f s; "
            "their deliveries are sent again when their leases run out",
            unwritten,
            SHUTDOWN_GRACE_SECONDS,
        )

    async def _record(self, batch: list[AttemptOutcome | Deferral]) -> None:
        """Write a batch, retrying until it lands: a lost result would mean a lost attempt log."""
        outcomes = [item for item in batch if isinstance(item, AttemptOutcome)]
        deferrals = [item for item in batch if isinstance(item, Deferral)]
        self._recording = len(batch)
        while True:
            try:
                if outcomes:
                    await self._store.complete(outcomes)
                    outcomes = []
                if deferrals:
                    await self._store.defer(deferrals, self._clock())
                break
            except Unavailable as exc:
                log.warning("cannot record %d attempts, retrying: %s", len(batch), exc)
            except Exception:
                log.exception("recording %d attempts failed, retrying", len(batch))
            await asyncio.sleep(STORE_RETRY_SECONDS)
        self._recording = 0
        if any(isinstance(o, AttemptOutcome) and o.next_attempt_at is not None for o in batch):
            self._wake.set()

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
