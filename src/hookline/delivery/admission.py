"""``Admission``: a worker's per-endpoint state, and the one decision both ways in consult.

Deliveries reach a worker two ways: its claims, and a publish handing them over in its own
transaction. Both ask ``Admission``: a claim for its ``ClaimPlan`` (endpoints to skip, most
rows of one endpoint), a hand-over for an ``AdmissionSnapshot`` that the store consults on its
own thread. Both are made by the pure rule in ``domain/admission.py`` from the state kept
here: how many deliveries of each endpoint the worker holds, each endpoint's gate (at most
``send_cap`` attempts at once), and each endpoint's circuit breaker (``domain/breaker.py``).

The per-endpoint limits beyond those keep their state here beside the breakers, and reach
the rule beside the loads and the blocked endpoints, in ``plan_claim`` and ``snapshot``:
those are the only two places a limit is applied, so the claim and the hand-over cannot
disagree about it. Rate limits are the first (``pacing.py``: the limits learned from the
deliveries held, the slowdowns, the send slots taken from the store); they reach the rule as
``allowances``, and a delivery of a limited endpoint waits for its slot in ``pace``.

Breakers hold across workers: each transition (opened, re-opened, closed; rare, never one
per attempt) goes to ``save_circuit``, which the worker's recorder writes to the store, and
``adopt`` takes on the breakers other workers opened, learned on each heartbeat. A breaker
one worker opened therefore holds the endpoint's deliveries on all of them.

Waking: a claim passes over an endpoint at its cap; once a delivery of it finishes below the
cap, or its breaker closes, ``wake`` is called so that its waiting deliveries are claimed.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

from hookline.delivery.gate import Gate
from hookline.delivery.pacing import Pacing
from hookline.domain import admission
from hookline.domain.admission import AdmissionSnapshot, ClaimPlan, EndpointLimits
from hookline.domain.breaker import Breaker, CircuitState, is_endpoint_failure
from hookline.domain.models import Endpoint
from hookline.domain.ratelimit import Slowdown
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    BreakerClosed,
    BreakerOpened,
    Instrumentation,
)


class Admission:
    """Per-endpoint load, gates and breakers of one worker; not shared across threads."""

    def __init__(
        self,
        limits: EndpointLimits,
        *,
        breaker_threshold: int,
        breaker_cooldown: float,
        clock: Callable[[], datetime],
        wake: Callable[[], None],
        save_circuit: Callable[[str, CircuitState | None], None],
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
        pacing: Pacing | None = None,
    ) -> None:
        """Without ``pacing``, rate limits are not enforced (unit tests of the rest)."""
        self.limits = limits
        self._pacing = pacing
        self._instrumentation = instrumentation
        self._save_circuit = save_circuit
        self._breaker_threshold = breaker_threshold
        self._breaker_cooldown = breaker_cooldown
        self._clock = clock
        self._wake = wake
        self._load: dict[str, int] = {}
        """Deliveries held per endpoint: sending, or waiting at its gate."""
        self._gates: dict[str, Gate] = {}
        self._breakers: dict[str, Breaker] = {}
        self._skipped: set[str] = set()
        """Endpoints a claim passed over for being at their cap: due rows may be waiting."""

    # -- the two ways in ------------------------------------------------------------------

    def plan_claim(self) -> ClaimPlan:
        """What the next claim may take; the endpoints it skips are woken when they free up."""
        plan = admission.plan_claim(self.limits, self._load, self._blocked(), self._allowances())
        self._skipped.update(plan.skip)
        return plan

    def snapshot(self, slots: int) -> AdmissionSnapshot:
        """What one publish transaction may hand over, within ``slots``."""
        return admission.snapshot(
            self.limits, self._load, self._blocked(), slots, self._allowances()
        )

    def left_pending(self, endpoints: Collection[str]) -> bool:
        """Note endpoints a hand-over wrote pending deliveries for; True if a claim may take
        some of them now (others wait until their endpoint frees up)."""
        plan = admission.plan_claim(self.limits, self._load, self._blocked(), self._allowances())
        held = set(plan.skip)
        self._skipped.update(held.intersection(endpoints))
        return not held.issuperset(endpoints)

    def _allowances(self) -> dict[str, int]:
        return self._pacing.allowances() if self._pacing is not None else {}

    def _blocked(self) -> list[str]:
        now = self._clock().timestamp()
        return [endpoint for endpoint, breaker in self._breakers.items() if breaker.blocks(now)]

    # -- one delivery, from start to finish ---------------------------------------------

    def started(self, endpoint_id: str) -> None:
        self._load[endpoint_id] = self._load.get(endpoint_id, 0) + 1

    def learn(self, endpoint: Endpoint) -> None:
        """Note the rate limit of an endpoint whose delivery the worker takes on."""
        if self._pacing is not None:
            self._pacing.note(endpoint)

    def paced(self, endpoint_id: str) -> bool:
        """Whether a delivery of the endpoint must wait for a send slot (``pace``)."""
        return self._pacing is not None and self._pacing.paced(endpoint_id)

    async def pace(self, endpoint_id: str) -> bool:
        """Wait for the endpoint's next send slot; False if the worker stops first."""
        return self._pacing is None or await self._pacing.wait(endpoint_id)

    def answered(self, endpoint_id: str, status_code: int, retry_after: str, ms: int) -> None:
        """A receiver answered with ``Retry-After``: a 429 or 503 slows its endpoint down.
        Without a limit of its own, its current rate is estimated from what this worker has
        under way to it over the answer's time (Little's law)."""
        if self._pacing is not None:
            under_way = min(self._load.get(endpoint_id, 1), self.limits.send_cap)
            observed = under_way / max(ms / 1000, 0.001)
            self._pacing.answered(endpoint_id, status_code, retry_after, observed)

    def adopt_slowdowns(self, slowdowns: Mapping[str, Slowdown]) -> None:
        """Slow down the endpoints other workers' receivers asked to (learned on heartbeats)."""
        if self._pacing is not None:
            self._pacing.adopt(slowdowns)

    def stop(self) -> None:
        """The worker is stopping: deliveries waiting for a send slot go back."""
        if self._pacing is not None:
            self._pacing.close()

    def gate(self, endpoint_id: str) -> Gate:
        gate = self._gates.get(endpoint_id)
        if gate is None:
            gate = self._gates[endpoint_id] = Gate(self.limits.send_cap)
        return gate

    def hold(self, endpoint_id: str) -> datetime | None:
        """None if an attempt may start now; else when the delivery is due again (its
        endpoint's breaker is open, or half-open with its probe under way)."""
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            return None
        now = self._clock().timestamp()
        if breaker.admit(now):
            return None
        return datetime.fromtimestamp(breaker.hold_until(now), UTC)

    def held_until(self, endpoint_id: str) -> datetime | None:
        """As ``hold``, but without taking a half-open breaker's probe: for a delivery that
        will wait for a send slot first, and ask ``hold`` once it has one."""
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            return None
        now = self._clock().timestamp()
        if not breaker.blocks(now):
            return None
        return datetime.fromtimestamp(breaker.hold_until(now), UTC)

    def record(self, endpoint_id: str, status_code: int) -> None:
        """Count an attempt's answer against its endpoint's breaker."""
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            if not is_endpoint_failure(status_code):
                return
            breaker = self._breakers[endpoint_id] = self._breaker()
        was_closed = breaker.closed
        held_until = breaker.open_until
        breaker.record(status_code, self._clock().timestamp())
        if breaker.closed and breaker.failures == 0:
            del self._breakers[endpoint_id]
            if not was_closed:
                self._instrumentation.emit(BreakerClosed(endpoint_id))
                self._save_circuit(endpoint_id, None)
                self._wake()
        elif breaker.open_until != held_until:
            self._instrumentation.emit(
                BreakerOpened(endpoint_id, breaker.failures, breaker.cooldown)
            )
            self._save_circuit(endpoint_id, breaker.state)

    def adopt(self, circuits: Mapping[str, CircuitState]) -> None:
        """Hold the endpoints whose breakers other workers opened, as long as they hold them."""
        for endpoint_id, state in circuits.items():
            breaker = self._breakers.get(endpoint_id)
            if breaker is None:
                breaker = self._breakers[endpoint_id] = self._breaker()
            breaker.adopt(state)

    def _breaker(self) -> Breaker:
        return Breaker(threshold=self._breaker_threshold, base_cooldown=self._breaker_cooldown)

    def finished(self, endpoint_id: str) -> None:
        """A delivery is no longer held: sent, or put back."""
        load = self._load.get(endpoint_id, 1) - 1
        if load < self.limits.send_cap and endpoint_id in self._skipped:
            self._skipped.discard(endpoint_id)
            self._wake()  # no longer busy: its due deliveries may be claimed again
        if load > 0:
            self._load[endpoint_id] = load
        else:
            self._load.pop(endpoint_id, None)
            self._gates.pop(endpoint_id, None)
