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
``adopt`` takes on the store's circuits on each heartbeat: those other workers opened, and
the absence of one this worker holds (another worker's probe closed it). The half-open probe
is one across all workers: ``wants_probe`` tells the worker to bid for it in the store, and
``probe_answer`` takes the store's answer.

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
from hookline.domain.breaker import (
    Breaker,
    BreakerSettings,
    CircuitState,
    ProbeGrant,
    is_endpoint_failure,
)
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
        breaker: BreakerSettings,
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
        self._breaker_settings = breaker
        self._clock = clock
        self._wake = wake
        self._load: dict[str, int] = {}
        """Deliveries held per endpoint: sending, or waiting at its gate."""
        self._gates: dict[str, Gate] = {}
        self._breakers: dict[str, Breaker] = {}
        self._diverting: dict[str, float] = {}
        """Endpoints with a fallback destination that takes their held deliveries once their
        circuit has been open this many seconds (``policy.fallback.afterOpenSeconds``)."""
        self._unsaved: dict[str, int] = {}
        """Circuit transitions per endpoint queued for the store and not written yet: until
        they are, the store's silence about a circuit is not news that it closed."""
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
        """Endpoints whose breaker blocks, except those whose held deliveries now go to
        their fallback destination: those are taken, to be diverted."""
        now = self._clock().timestamp()
        return [
            endpoint
            for endpoint, breaker in self._breakers.items()
            if breaker.blocks(now) and not self._open_too_long(endpoint, now)
        ]

    def _open_too_long(self, endpoint_id: str, now: float) -> bool:
        after = self._diverting.get(endpoint_id)
        breaker = self._breakers.get(endpoint_id)
        if after is None or breaker is None or breaker.state is None:
            return False
        return now - breaker.state.opened_at >= after

    def diverts(self, endpoint: Endpoint) -> bool:
        """Should a delivery of ``endpoint`` that its breaker holds go to the endpoint's
        fallback destination instead (its circuit has been open longer than
        ``afterOpenSeconds``)? Also notes the setting, so claims take such deliveries."""
        self._note_fallback(endpoint)
        return self._open_too_long(endpoint.id, self._clock().timestamp())

    def _note_fallback(self, endpoint: Endpoint) -> None:
        fallback = endpoint.policy.fallback
        if fallback is None or fallback.after_open_seconds is None:
            self._diverting.pop(endpoint.id, None)
        else:
            self._diverting[endpoint.id] = fallback.after_open_seconds

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

    def wants_probe(self, endpoint_id: str) -> bool:
        """True if this delivery should bid for its endpoint's half-open probe (the store
        grants it to one worker); the worker then passes the answer to ``probe_answer``."""
        breaker = self._breakers.get(endpoint_id)
        return breaker is not None and breaker.wants_probe(self._clock().timestamp())

    def probe_answer(
        self, endpoint_id: str, grant: ProbeGrant | None, state: CircuitState | None
    ) -> None:
        """The store's answer to this worker's bid; None if the store could not be asked."""
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            return
        if grant is None:
            breaker.probe_failed_to_bid()
            return
        breaker.probe_granted(grant, state)
        if breaker.idle:
            del self._breakers[endpoint_id]
        if grant is ProbeGrant.CLOSED:
            self._wake()

    def hold(self, endpoint_id: str) -> datetime | None:
        """None if an attempt may start now; else when the delivery is due again (its
        endpoint's breaker is open, or half-open with a probe under way)."""
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            return None
        now = self._clock().timestamp()
        if not breaker.blocks(now):
            return None
        return datetime.fromtimestamp(breaker.hold_until(now), UTC)

    def record(self, endpoint: Endpoint, status_code: int, retry_after: str | None) -> None:
        """Count an attempt's answer against its endpoint's breaker."""
        endpoint_id = endpoint.id
        breaker = self._breakers.get(endpoint_id)
        if breaker is None:
            if not is_endpoint_failure(status_code):
                return  # the common case: a healthy endpoint, nothing to count
            breaker = self._breakers[endpoint_id] = Breaker(
                self._breaker_settings.over(endpoint.policy.breaker)
            )
        else:
            settings = self._breaker_settings.over(endpoint.policy.breaker)
            if settings is not breaker.settings:
                breaker.reconfigure(settings)
        self._note_fallback(endpoint)
        was_closed = breaker.closed
        now = self._clock().timestamp()
        opened = breaker.record(status_code, retry_after, now)
        if opened is not None:
            self._instrumentation.emit(
                BreakerOpened(
                    endpoint_id,
                    opened.failures,
                    opened.cooldown,
                    app_id=endpoint.app_id,
                    reason=opened.reason.value,
                    failure_ratio=opened.failure_ratio,
                    endpoint_uid=endpoint.uid,
                    reopened=not was_closed,
                    probe_at=datetime.fromtimestamp(now + opened.cooldown, UTC),
                )
            )
            self._save(endpoint_id, opened)
        elif breaker.closed and not was_closed:
            self._instrumentation.emit(
                BreakerClosed(endpoint_id, app_id=endpoint.app_id, endpoint_uid=endpoint.uid)
            )
            self._save(endpoint_id, None)
            self._wake()
        if breaker.idle:
            del self._breakers[endpoint_id]
            self._diverting.pop(endpoint_id, None)

    def _save(self, endpoint_id: str, state: CircuitState | None) -> None:
        self._unsaved[endpoint_id] = self._unsaved.get(endpoint_id, 0) + 1
        self._save_circuit(endpoint_id, state)

    def circuit_saved(self, endpoint_id: str) -> None:
        """One transition of ``endpoint_id`` reached the store."""
        left = self._unsaved.get(endpoint_id, 1) - 1
        if left > 0:
            self._unsaved[endpoint_id] = left
        else:
            self._unsaved.pop(endpoint_id, None)

    def adopt(self, circuits: Mapping[str, CircuitState]) -> None:
        """Take on the store's circuits: hold the endpoints other workers' breakers opened,
        as long as they hold them, and release those whose circuit is gone (another
        worker's probe closed it) unless this worker's own news has not reached the store."""
        for endpoint_id, state in circuits.items():
            breaker = self._breakers.get(endpoint_id)
            if breaker is None:
                breaker = self._breakers[endpoint_id] = Breaker(self._breaker_settings)
            breaker.adopt(state)
        released = False
        for endpoint_id in [e for e in self._breakers if e not in circuits]:
            if endpoint_id in self._unsaved:
                continue
            breaker = self._breakers[endpoint_id]
            released |= breaker.adopt(None)
            if breaker.idle:
                del self._breakers[endpoint_id]
        if released:
            self._wake()

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
