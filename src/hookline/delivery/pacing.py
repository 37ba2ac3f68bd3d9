"""``Pacing``: a worker's rate-limited endpoints, their send slots and their slowdowns.

The rule is ``domain/ratelimit.py``: every worker takes send slots from one timeline per
endpoint in the store. Here is the worker's side. A delivery of a limited (or slowed)
endpoint waits in ``wait`` for a slot, then until the slot's time; one task (``_refill``)
asks the store for the slots of every endpoint with deliveries waiting, one statement per
endpoint per grant, and hands them out in arrival order, keeping what is left over for the
deliveries that follow. It asks for what the waiting deliveries need or, if more, what the
endpoint's recent use needs over the horizon. A grant reaches at most the horizon ahead, so
the task asks again once half of it has passed: about ten round trips a second per busy
limited endpoint, whatever its rate and whether its limit binds or not, and none for an
endpoint nobody waits on.

An endpoint without a limit is not known here at all: ``paced`` is one dictionary lookup,
and nothing else of this module runs for its deliveries.

Slowdowns come three ways: a 429/503 with ``Retry-After`` this worker saw (``answered``,
written to the store for the others), each grant of slots (the store returns the endpoint's
slowdown with them), and the heartbeat (``adopt``: the slowdowns of endpoints this worker
has no slots for, unlimited ones included).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime

from hookline.domain import ratelimit
from hookline.domain.errors import Unavailable
from hookline.domain.models import Endpoint
from hookline.domain.ratelimit import SlotGrant, SlotRequest, Slowdown

log = logging.getLogger("hookline.worker")

TakeSlots = Callable[[Sequence[SlotRequest], datetime], Awaitable[Mapping[str, SlotGrant]]]
SaveSlowdown = Callable[[str, float, datetime], Awaitable[None]]

MIN_ASK_SECONDS = 0.005
"""The shortest pause between two grants of one endpoint's slots."""

STORE_RETRY_SECONDS = 0.5


USE_WINDOW_SECONDS = 1.0
"""The recent use of an endpoint's slots is counted over about this long."""


class _Lane:
    """One endpoint's deliveries waiting for slots, slots not yet handed out, and how many
    slots it used lately (``used`` since ``counting_since``)."""

    __slots__ = ("counting_since", "slots", "used", "waiters")

    def __init__(self, now: float) -> None:
        self.waiters: deque[asyncio.Future[float | None]] = deque()
        self.slots: deque[float] = deque()
        self.used = 0
        self.counting_since = now

    def use(self, now: float) -> None:
        if now - self.counting_since > USE_WINDOW_SECONDS:
            self.used, self.counting_since = 0, now - USE_WINDOW_SECONDS / 2
        self.used += 1

    def use_rate(self, now: float) -> float:
        return self.used / max(now - self.counting_since, ratelimit.GRANT_HORIZON_SECONDS)

    def unserved(self) -> int:
        return sum(1 for w in self.waiters if not w.done())

    def serve(self, times: Sequence[float]) -> None:
        """Hand out slots to the waiters, longest waiting first; keep what is left over."""
        self.slots.extend(times)
        while self.slots and self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_result(self.slots.popleft())


class Pacing:
    """Send slots and slowdowns of one worker's limited endpoints; event loop only."""

    def __init__(
        self,
        take: TakeSlots,
        save_slowdown: SaveSlowdown,
        clock: Callable[[], datetime],
    ) -> None:
        self._take = take
        self._save_slowdown = save_slowdown
        self._clock = clock
        self._limits: dict[str, int] = {}
        """The configured limit of each limited endpoint this worker has held."""
        self._slowdowns: dict[str, Slowdown] = {}
        self._lanes: dict[str, _Lane] = {}
        self._refill: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._closed = False

    # -- what admission asks --------------------------------------------------------------

    def note(self, endpoint: Endpoint) -> None:
        """Learn an endpoint's limit from a delivery of it (claimed or handed over)."""
        limit = endpoint.rate_limit
        if limit is not None:
            self._limits[endpoint.id] = limit
        elif self._limits:
            self._limits.pop(endpoint.id, None)

    def paced(self, endpoint_id: str) -> bool:
        """Whether an endpoint's deliveries wait for slots (it is limited or slowed)."""
        return endpoint_id in self._limits or endpoint_id in self._slowdowns

    def rate(self, endpoint_id: str, now: float) -> float | None:
        return ratelimit.effective_rate(
            self._limits.get(endpoint_id), self._slowdowns.get(endpoint_id), now
        )

    def allowances(self) -> dict[str, int]:
        """How many deliveries of each paced endpoint this worker may hold."""
        if not self._limits and not self._slowdowns:
            return {}
        now = self._clock().timestamp()
        self._forget_recovered(now)
        found: dict[str, int] = {}
        for endpoint_id in self._limits.keys() | self._slowdowns.keys():
            rate = self.rate(endpoint_id, now)
            if rate is not None:
                found[endpoint_id] = ratelimit.hold_allowance(rate)
        return found

    def _forget_recovered(self, now: float) -> None:
        for endpoint_id, slowdown in list(self._slowdowns.items()):
            if slowdown.over(now, self._limits.get(endpoint_id)):
                del self._slowdowns[endpoint_id]

    # -- one delivery -----------------------------------------------------------------------

    async def wait(self, endpoint_id: str) -> bool:
        """Wait for a send slot of ``endpoint_id`` and for its time; a slot that comes too
        late (the worker was not run in time) is given up for another. False if the worker
        is stopping first: the delivery goes back unattempted."""
        while not self._closed:
            lane = self._lane(endpoint_id)  # an idle lane may have been dropped meanwhile
            at = self._fresh_slot(lane)
            if at is None:
                at = await self._slot(lane)
                if at is None:
                    return False
            delay = at - self._clock().timestamp()
            if delay > ratelimit.EARLY_SLOT_SECONDS:
                await asyncio.sleep(delay)
            now = self._clock().timestamp()
            if now - at <= ratelimit.LATE_SLOT_SECONDS:
                lane.use(now)
                return True
        return False

    def _lane(self, endpoint_id: str) -> _Lane:
        lane = self._lanes.get(endpoint_id)
        if lane is None:
            lane = self._lanes[endpoint_id] = _Lane(self._clock().timestamp())
        return lane

    async def _slot(self, lane: _Lane) -> float | None:
        waiter: asyncio.Future[float | None] = asyncio.get_running_loop().create_future()
        lane.waiters.append(waiter)
        self._start_refill()
        try:
            return await waiter
        except asyncio.CancelledError:
            unused = waiter.result() if waiter.done() and not waiter.cancelled() else None
            if unused is not None:
                lane.slots.appendleft(unused)  # the next delivery may use it
            raise

    def _fresh_slot(self, lane: _Lane) -> float | None:
        """A slot left over from a grant, unless it is already too late to use."""
        oldest = self._clock().timestamp() - ratelimit.LATE_SLOT_SECONDS
        while lane.slots:
            at = lane.slots.popleft()
            if at >= oldest:
                return at
        return None

    def answered(
        self, endpoint_id: str, status_code: int, retry_after: str | None, observed: float
    ) -> None:
        """Slow the endpoint down if its receiver asked to (429/503 with ``Retry-After``),
        here at once and, through the store, on every other worker."""
        now = self._clock()
        ts = now.timestamp()
        slowdown = ratelimit.slow_down(
            status_code,
            retry_after,
            self._slowdowns.get(endpoint_id),
            self.rate(endpoint_id, ts),
            observed,
            ts,
        )
        if slowdown is None:
            return
        self._slowdowns[endpoint_id] = slowdown
        task = asyncio.create_task(self._save(endpoint_id, slowdown.rate, now))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _save(self, endpoint_id: str, rate: float, now: datetime) -> None:
        try:
            await self._save_slowdown(endpoint_id, rate, now)
        except Unavailable as exc:
            log.warning("cannot share an endpoint's slowdown: %s", exc)

    def adopt(self, slowdowns: Mapping[str, Slowdown]) -> None:
        """Take on the slowdowns other workers recorded (learned on each heartbeat)."""
        for endpoint_id, slowdown in slowdowns.items():
            self._learn(endpoint_id, slowdown)

    def _learn(self, endpoint_id: str, slowdown: Slowdown) -> None:
        known = self._slowdowns.get(endpoint_id)
        if known is None or known.since < slowdown.since:
            self._slowdowns[endpoint_id] = slowdown

    def close(self) -> None:
        """The worker is stopping: deliveries still waiting for a slot go back."""
        self._closed = True
        for lane in self._lanes.values():
            for waiter in lane.waiters:
                if not waiter.done():
                    waiter.set_result(None)
            lane.waiters.clear()
        if self._refill is not None:
            self._refill.cancel()

    # -- the grants -------------------------------------------------------------------------

    def _start_refill(self) -> None:
        if self._refill is None or self._refill.done():
            self._refill = asyncio.create_task(
                self._refill_loop(), name="hookline-pacing", context=contextvars.Context()
            )

    async def _refill_loop(self) -> None:
        while not self._closed:
            wanting = {e: lane for e, lane in self._lanes.items() if lane.unserved()}
            if not wanting:
                self._drop_idle_lanes()
                return
            try:
                pause = await self._grant(wanting)
            except Unavailable as exc:
                log.warning("cannot take send slots, retrying: %s", exc)
                pause = STORE_RETRY_SECONDS
            except Exception:
                # Deliveries wait on this task: it must outlive any one failed grant.
                log.exception("taking send slots failed, retrying")
                pause = STORE_RETRY_SECONDS
            if pause > 0:
                await asyncio.sleep(pause)

    async def _grant(self, wanting: Mapping[str, _Lane]) -> float:
        """One round of grants; how long to wait before the next."""
        now = self._clock()
        ts = now.timestamp()
        requests = []
        for endpoint_id, lane in wanting.items():
            rate = self.rate(endpoint_id, ts)
            if rate is None:  # its limit is gone: nothing to wait for
                lane.serve([ts] * lane.unserved())
                continue
            allowance = ratelimit.hold_allowance(rate)
            wanted = ratelimit.slots_wanted(lane.unserved(), lane.use_rate(ts), allowance)
            requests.append(SlotRequest(endpoint_id, rate, wanted))
        grants = await self._take(requests, now)
        pause = ratelimit.GRANT_HORIZON_SECONDS
        for endpoint_id, grant in grants.items():
            if grant.slowdown is not None:
                self._learn(endpoint_id, grant.slowdown)
            lane = self._lanes[endpoint_id]
            lane.serve(grant.times())
            if lane.unserved():
                # Ask again once half the horizon has passed, for a batch worth the trip.
                free_at = grant.next_free_us / 1_000_000
                due = free_at - ts - ratelimit.GRANT_HORIZON_SECONDS / 2
                pause = min(pause, max(MIN_ASK_SECONDS, due))
        return pause if any(lane.unserved() for lane in wanting.values()) else 0.0

    def _drop_idle_lanes(self) -> None:
        for endpoint_id in [e for e, lane in self._lanes.items() if not lane.slots]:
            del self._lanes[endpoint_id]
