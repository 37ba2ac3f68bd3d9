"""Admission: the one per-endpoint decision that claims and publish hand-overs both consult.

The contract: over any state of a worker (loads, caps, closed, open and half-open breakers,
several endpoints), a hand-over never admits what a claim would refuse — nothing of an
endpoint whose breaker blocks, and never more of an endpoint than its room, the bound a
claim keeps too — and never more in all than the slots it was offered.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest

from hookline.delivery.admission import Admission
from hookline.domain.admission import HOLD_FACTOR, AdmissionSnapshot, EndpointLimits
from hookline.domain.breaker import BreakerSettings, CircuitState, ProbeGrant
from hookline.domain.models import Endpoint
from hookline.domain.policy import BreakerPolicy, EndpointPolicy, FallbackPolicy
from hookline.instrumentation import (
    NO_INSTRUMENTATION,
    BreakerClosed,
    BreakerOpened,
    Event,
    Instrumentation,
)
from tests.conftest import make_app, make_endpoint

THRESHOLD = 3
COOLDOWN = 10.0
START = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = START

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Wakes:
    count: int = 0

    def __call__(self) -> None:
        self.count += 1


@dataclass
class State:
    """A worker's admission, brought to a generated state, and what the test knows of it."""

    admission: Admission
    loads: dict[str, int]
    blocked: set[str] = field(default_factory=set)


@dataclass
class Saves:
    """The breaker transitions admission asked to share with other workers."""

    saved: list[tuple[str, CircuitState | None]] = field(default_factory=list)

    def __call__(self, endpoint_id: str, state: CircuitState | None) -> None:
        self.saved.append((endpoint_id, state))


def make(
    send_cap: int = 2, saves: Saves | None = None, heard: Instrumentation | None = None
) -> tuple[Admission, Clock, Wakes]:
    clock, wakes = Clock(), Wakes()
    admission = Admission(
        EndpointLimits(send_cap),
        breaker=BreakerSettings(threshold=THRESHOLD, cooldown=COOLDOWN),
        clock=clock,
        wake=wakes,
        save_circuit=saves if saves is not None else Saves(),
        instrumentation=heard or NO_INSTRUMENTATION,
    )
    return admission, clock, wakes


_APP = make_app()


def endpoint(endpoint_id: str, policy: EndpointPolicy | None = None) -> Endpoint:
    """An endpoint of that id, as a claimed delivery carries it."""
    made = make_endpoint(_APP)
    return replace(made, id=endpoint_id, policy=policy or made.policy)


def record(
    admission: Admission, endpoint_id: str, status: int, retry_after: str | None = None
) -> None:
    admission.record(endpoint(endpoint_id), status, retry_after)


def trip(admission: Admission, endpoint_id: str) -> None:
    for _ in range(THRESHOLD):
        record(admission, endpoint_id, 503)


def probe(admission: Admission, endpoint_id: str) -> None:
    """This worker bids for the half-open probe and the store grants it."""
    assert admission.wants_probe(endpoint_id), "the first delivery after the cooldown bids"
    admission.probe_answer(endpoint_id, ProbeGrant.GRANTED, None)


def generated(rng: random.Random) -> State:
    """Random loads and breakers on up to six endpoints: each breaker closed with some
    failures, open, half-open before its probe, or half-open with its probe under way."""
    admission, clock, _ = make(rng.randint(1, 5))
    hold_cap = admission.limits.hold_cap
    state = State(admission, {})
    breakers = {
        f"ep{n}": rng.choice(["none", "failing", "open", "half-open", "probing"])
        for n in range(rng.randint(1, 6))
    }
    for ep, kind in breakers.items():
        if kind == "failing":
            for _ in range(rng.randint(1, THRESHOLD - 1)):
                record(admission, ep, 0)
        elif kind != "none":
            trip(admission, ep)
    clock.advance(COOLDOWN + 1)
    for ep, kind in breakers.items():
        if kind in ("open", "probing"):
            probe(admission, ep)
        if kind == "open":
            record(admission, ep, 0)  # the probe failed: open again, for twice as long
        if kind in ("open", "probing"):
            state.blocked.add(ep)
        load = rng.choice([0, 0, rng.randint(0, hold_cap + 2)])
        for _ in range(load):
            admission.started(ep)
        if load:
            state.loads[ep] = load
    return state


def take_requests(
    snapshot: AdmissionSnapshot, rng: random.Random, endpoints: list[str]
) -> tuple[Counter[str], Counter[str]]:
    """Ask the snapshot for a random stream of deliveries; count what it took and refused."""
    taken: Counter[str] = Counter()
    refused: Counter[str] = Counter()
    for _ in range(rng.randint(0, 40)):
        endpoint = rng.choice(endpoints)
        if snapshot.take(endpoint):
            taken[endpoint] += 1
        else:
            refused[endpoint] += 1
    return taken, refused


@pytest.mark.parametrize("seed", range(300))
def test_a_hand_over_never_admits_what_a_claim_would_refuse(seed: int) -> None:
    """For a generated state, the hand-over admits nothing of an endpoint whose breaker
    blocks (the claim skips those), never more of one endpoint than its room (which a claim
    never exceeds either), never more in all than its slots, and refuses only when the slots
    or the endpoint's room are used up."""
    rng = random.Random(seed)
    state = generated(rng)
    admission = state.admission
    limits = admission.limits
    plan = admission.plan_claim()
    slots = rng.randint(0, 30)
    snapshot = admission.snapshot(slots)
    endpoints = ["ep0", "ep1", "ep2", "ep3", "ep4", "ep5", "ep-new"]
    taken, refused = take_requests(snapshot, rng, endpoints)

    assert sum(taken.values()) <= slots
    assert state.blocked <= set(plan.skip)
    for endpoint in endpoints:
        load = state.loads.get(endpoint, 0)
        room = 0 if endpoint in state.blocked else max(0, limits.hold_cap - load)
        assert taken[endpoint] <= room
        if endpoint not in plan.skip:
            assert load + plan.per_endpoint <= limits.hold_cap, "a claim stays within the room"
        if refused[endpoint] and sum(taken.values()) < slots:
            assert taken[endpoint] == room, "refused only once its room is used up"


@pytest.mark.parametrize("seed", range(100))
def test_a_claim_skips_exactly_the_endpoints_blocked_or_sending_at_their_cap(seed: int) -> None:
    """The claim's skip list is every endpoint whose breaker blocks or whose load reached the
    send cap, and it takes at most the send cap of any other endpoint."""
    state = generated(random.Random(seed))
    plan = state.admission.plan_claim()
    send_cap = state.admission.limits.send_cap
    at_cap = {endpoint for endpoint, load in state.loads.items() if load >= send_cap}
    assert set(plan.skip) == at_cap | state.blocked
    assert plan.per_endpoint == send_cap


def test_giving_back_restores_the_room_and_the_slot() -> None:
    """A take undone (its request rolled back) can be taken again, and no more."""
    admission, _, _ = make(send_cap=1)
    snapshot = admission.snapshot(5)
    assert snapshot.take("ep") and snapshot.take("ep") and not snapshot.take("ep")
    snapshot.give_back("ep")
    assert snapshot.slots == 4
    assert snapshot.take("ep") and not snapshot.take("ep")


def test_hold_cap_is_at_least_twice_the_send_cap() -> None:
    """A claim of a whole send cap from an endpoint just below it stays within its room."""
    assert HOLD_FACTOR >= 2
    assert EndpointLimits(7).hold_cap == 7 * HOLD_FACTOR


def test_a_snapshot_is_fixed_when_it_is_made() -> None:
    """Deliveries started after the offer was made do not change what it admits (the store
    consults it on its own thread), and taking from it does not change the worker's loads."""
    admission, _, _ = make(send_cap=1)
    snapshot = admission.snapshot(10)
    admission.started("ep")
    admission.started("ep")
    assert snapshot.take("ep") and snapshot.take("ep") and not snapshot.take("ep")
    assert admission.snapshot(10).take("ep") is False


def test_an_endpoint_skipped_at_its_cap_wakes_the_worker_once_below_it() -> None:
    """A claim passes over an endpoint at its cap; the delivery that takes it below the cap
    wakes the worker so its waiting rows are claimed, and only once."""
    admission, _, wakes = make(send_cap=2)
    for _ in range(3):
        admission.started("ep")
    assert admission.plan_claim().skip == ("ep",)
    admission.finished("ep")
    assert wakes.count == 0, "still at its cap"
    admission.finished("ep")
    admission.finished("ep")
    assert wakes.count == 1


def test_rows_left_pending_ask_for_a_claim_only_for_endpoints_below_their_cap() -> None:
    """Rows a hand-over wrote pending for an endpoint at its cap wait for it to free up; rows
    for any other endpoint call for a claim now."""
    admission, _, wakes = make(send_cap=1)
    admission.started("full")
    assert admission.left_pending({"full"}) is False
    assert admission.left_pending({"full", "idle"}) is True
    admission.finished("full")
    assert wakes.count == 1


def test_an_open_breaker_holds_deliveries_until_its_cooldown_and_then_lets_one_probe() -> None:
    """While open, a delivery is held until the cooldown ends; after it, one delivery bids for
    the probe and the others are held; the probe's success closes the breaker and wakes the
    worker."""
    admission, clock, wakes = make()
    trip(admission, "ep")
    assert admission.hold("ep") == START + timedelta(seconds=COOLDOWN)
    assert "ep" in admission.plan_claim().skip
    assert not admission.snapshot(10).take("ep")
    clock.advance(COOLDOWN)
    probe(admission, "ep")
    assert not admission.wants_probe("ep"), "one probe at a time"
    assert admission.hold("ep") == clock.now + timedelta(seconds=COOLDOWN)
    record(admission, "ep", 200)
    assert wakes.count == 1
    assert admission.hold("ep") is None and admission.snapshot(10).take("ep")


def at(seconds: float) -> float:
    return START.timestamp() + seconds


def test_only_breaker_transitions_are_shared_never_single_attempts() -> None:
    """Failures below the threshold and answers of a closed breaker write nothing; opening,
    re-opening after a failed probe and closing each write the new state once."""
    saves = Saves()
    admission, clock, _ = make(saves=saves)
    record(admission, "ep", 200)
    for _ in range(THRESHOLD - 1):
        record(admission, "ep", 0)
    record(admission, "ep", 404)
    assert saves.saved == []
    trip(admission, "ep")
    opened = CircuitState(THRESHOLD, at(COOLDOWN), COOLDOWN, at(0), 5 / 6)
    assert saves.saved == [("ep", opened)]
    clock.advance(COOLDOWN)
    probe(admission, "ep")
    record(admission, "ep", 0)
    reopened = CircuitState(THRESHOLD + 1, at(3 * COOLDOWN), 2 * COOLDOWN, at(0), 6 / 7)
    clock.advance(2 * COOLDOWN)
    probe(admission, "ep")
    record(admission, "ep", 200)
    assert saves.saved == [("ep", opened), ("ep", reopened), ("ep", None)]


def test_an_opening_says_when_it_probes_and_a_reopening_says_it_is_the_same_outage() -> None:
    """The breaker's events name the endpoint and its probe time, and mark a re-opening after
    a failed probe, so that operational webhooks announce one outage once."""
    seen: list[Event] = []

    class Heard:
        events = frozenset({BreakerOpened, BreakerClosed})

        def __call__(self, event: Event) -> None:
            seen.append(event)

    admission, clock, _ = make(heard=Instrumentation([Heard()]))
    trip(admission, "ep")
    clock.advance(COOLDOWN)
    probe(admission, "ep")
    record(admission, "ep", 0)
    clock.advance(2 * COOLDOWN)
    probe(admission, "ep")
    record(admission, "ep", 200)
    assert [type(e).__name__ for e in seen] == ["BreakerOpened", "BreakerOpened", "BreakerClosed"]
    first, again, closed = seen
    assert isinstance(first, BreakerOpened) and isinstance(again, BreakerOpened)
    assert isinstance(closed, BreakerClosed)
    assert (first.reopened, first.probe_at) == (False, datetime.fromtimestamp(at(COOLDOWN), UTC))
    assert (again.reopened, again.probe_at) == (True, datetime.fromtimestamp(at(3 * COOLDOWN), UTC))
    assert first.endpoint_id == closed.endpoint_id == "ep"


def test_a_circuit_another_worker_opened_holds_the_endpoint_here_too() -> None:
    """An adopted open circuit makes the claim skip the endpoint, the hand-over refuse it and
    a leased delivery wait until it ends; then this worker bids for the probe."""
    admission, clock, _ = make()
    until = START.timestamp() + 30.0
    admission.adopt({"ep": CircuitState(THRESHOLD, until, 30.0)})
    assert "ep" in admission.plan_claim().skip
    assert not admission.snapshot(10).take("ep")
    assert admission.hold("ep") == datetime.fromtimestamp(until, UTC)
    clock.advance(30.0)
    assert "ep" not in admission.plan_claim().skip
    assert admission.wants_probe("ep")


def test_adopting_never_shortens_a_longer_hold_of_this_worker() -> None:
    """A circuit learned from the store that ends sooner than this worker's own leaves it be."""
    admission, _, _ = make()
    trip(admission, "ep")
    own_until = admission.hold("ep")
    admission.adopt({"ep": CircuitState(1, START.timestamp() + 1.0, 1.0)})
    assert admission.hold("ep") == own_until


def test_a_circuit_gone_from_the_store_is_released_once_this_workers_news_landed() -> None:
    """The store without the circuit means another worker's probe closed it: this worker
    releases the endpoint and wakes, but not while its own opening is still unwritten."""
    admission, _, wakes = make()
    trip(admission, "ep")
    admission.adopt({})
    assert admission.hold("ep") is not None, "its opening has not reached the store yet"
    admission.circuit_saved("ep")
    admission.adopt({})
    assert admission.hold("ep") is None and wakes.count == 1


def test_a_probe_taken_by_another_worker_holds_until_its_lease_and_closed_releases() -> None:
    """TAKEN makes claims skip the endpoint until the other worker's probe lease ends (a
    leased delivery comes back one cooldown later); CLOSED (its probe succeeded) releases
    the endpoint here and wakes the worker."""
    admission, clock, wakes = make()
    trip(admission, "ep")
    clock.advance(COOLDOWN)
    assert admission.wants_probe("ep")
    theirs = CircuitState(THRESHOLD, at(COOLDOWN), COOLDOWN, probe_until=at(COOLDOWN + 20))
    admission.probe_answer("ep", ProbeGrant.TAKEN, theirs)
    assert admission.hold("ep") == clock.now + timedelta(seconds=COOLDOWN)
    assert "ep" in admission.plan_claim().skip
    clock.advance(20)
    assert admission.wants_probe("ep")
    admission.probe_answer("ep", ProbeGrant.CLOSED, None)
    assert admission.hold("ep") is None and wakes.count == 1


def test_a_bid_the_store_could_not_answer_is_made_again() -> None:
    """A store error during the bid leaves the breaker half-open for the next delivery."""
    admission, clock, _ = make()
    trip(admission, "ep")
    clock.advance(COOLDOWN)
    assert admission.wants_probe("ep")
    admission.probe_answer("ep", None, None)
    assert admission.wants_probe("ep")


def test_an_endpoint_policy_overrides_the_servers_breaker_settings() -> None:
    """An endpoint whose policy sets threshold 1 opens on its first failure."""
    admission, _, _ = make()
    strict = EndpointPolicy(breaker=BreakerPolicy(threshold=1))
    admission.record(endpoint("ep", strict), 503, None)
    assert admission.hold("ep") is not None
    admission.record(endpoint("lenient"), 503, None)
    assert admission.hold("lenient") is None


def test_an_endpoint_open_longer_than_its_fallback_allows_is_claimed_to_be_diverted() -> None:
    """Before afterOpenSeconds an open endpoint is skipped and its held deliveries are put
    back; after it, claims take its deliveries again and each held one is to be diverted."""
    admission, clock, _ = make()
    policy = EndpointPolicy(fallback=FallbackPolicy("ep_backup", after_open_seconds=5.0))
    primary = endpoint("ep", policy)
    for _ in range(THRESHOLD):
        admission.record(primary, 503, None)
    assert "ep" in admission.plan_claim().skip and not admission.diverts(primary)
    clock.advance(5.0)
    assert "ep" not in admission.plan_claim().skip
    assert admission.hold("ep") is not None and admission.diverts(primary)
    assert not admission.diverts(endpoint("ep")), "no fallback named: held, not diverted"
