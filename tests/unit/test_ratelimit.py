"""Rate limits, the pure rule (``domain/ratelimit.py``): the limit that applies, the slots a
first grant gives, the hold allowance, and how a receiver's ``Retry-After`` slows an endpoint
down and lets it recover."""

from __future__ import annotations

import random

import pytest

from hookline.domain import ratelimit
from hookline.domain.admission import EndpointLimits, plan_claim, snapshot
from hookline.domain.ratelimit import SlotGrant, SlotRequest, Slowdown


def test_the_endpoint_limit_wins_over_the_applications() -> None:
    """An endpoint's own limit applies; its application's only where it has none."""
    assert ratelimit.rate_limit(5, 100) == 5
    assert ratelimit.rate_limit(None, 100) == 100
    assert ratelimit.rate_limit(None, None) is None


def test_a_first_grant_reaches_the_horizon_and_no_further() -> None:
    """On an empty timeline the first slot is now, and slots stop at the horizon."""
    now_us = 1_000_000_000
    assert ratelimit.fresh_grant(SlotRequest("ep", 100, 1000), now_us) == (now_us + 21 * 10_000, 21)
    assert ratelimit.fresh_grant(SlotRequest("ep", 100, 3), now_us) == (now_us + 3 * 10_000, 3)


def test_an_endpoint_slower_than_the_horizon_still_gets_its_next_slot() -> None:
    """At one message a second a grant holds one slot, not none."""
    assert ratelimit.slots_within(0, ratelimit.HORIZON_US, ratelimit.interval_us(1)) == 1
    assert ratelimit.slots_within(ratelimit.HORIZON_US + 1, ratelimit.HORIZON_US, 10) == 0


def test_a_grant_lists_its_slots_interval_apart() -> None:
    """Slot ``i`` of a grant is at ``first + i * interval``."""
    grant = SlotGrant(first_us=2_000_000, count=3, interval_us=250_000, next_free_us=2_750_000)
    assert grant.times() == [2.0, 2.25, 2.5]


def test_a_worker_holds_about_two_seconds_of_a_limited_endpoint() -> None:
    """The hold allowance follows the rate, and is never zero."""
    assert ratelimit.hold_allowance(100) == 200
    assert ratelimit.hold_allowance(0.1) == 1


def test_a_429_with_retry_after_halves_the_current_rate() -> None:
    """429 or 503 with ``Retry-After`` halves the rate; without it, or another status, nothing."""
    slowed = ratelimit.slow_down(429, "1", None, 100.0, 0.0, now=50.0)
    assert slowed == Slowdown(50.0, 50.0)
    assert ratelimit.slow_down(503, "1", None, None, 30.0, now=50.0) == Slowdown(15.0, 50.0)
    assert ratelimit.slow_down(429, None, None, 100.0, 0.0, now=50.0) is None
    assert ratelimit.slow_down(500, "1", None, 100.0, 0.0, now=50.0) is None


def test_answers_to_requests_already_under_way_do_not_halve_again() -> None:
    """Within a second of a slowdown, more 429s belong to it; later ones halve again."""
    first = Slowdown(50.0, 50.0)
    assert ratelimit.slow_down(429, "1", first, 50.0, 0.0, now=50.5) is None
    assert ratelimit.slow_down(429, "1", first, 50.0, 0.0, now=51.5) == Slowdown(25.0, 51.5)


def test_a_slowdown_never_goes_below_the_minimum_rate() -> None:
    """However often a receiver says 429, an endpoint keeps at least ``MIN_RATE``."""
    assert ratelimit.slowed_rate(1.5) == ratelimit.MIN_RATE


@pytest.mark.parametrize(
    ("elapsed", "expected"),
    [(0.0, 25.0), (ratelimit.RECOVERY_SECONDS, 50.0), (2 * ratelimit.RECOVERY_SECONDS, 100.0)],
)
def test_a_slowed_endpoint_recovers_by_doubling(elapsed: float, expected: float) -> None:
    """The slowed rate doubles every ``RECOVERY_SECONDS``, up to the endpoint's own limit."""
    slowdown = Slowdown(25.0, 100.0)
    assert ratelimit.effective_rate(100, slowdown, 100.0 + elapsed) == pytest.approx(expected)
    assert slowdown.over(100.0 + 2 * ratelimit.RECOVERY_SECONDS, 100) is True
    assert slowdown.over(100.0 + ratelimit.RECOVERY_SECONDS, 100) is False


def test_an_unlimited_endpoint_is_unlimited_again_after_its_recovery() -> None:
    """Without a limit of its own, an endpoint is slowed for ``RECOVERY_DOUBLINGS`` periods."""
    slowdown = Slowdown(10.0, 0.0)
    end = ratelimit.RECOVERY_SECONDS * ratelimit.RECOVERY_DOUBLINGS
    assert ratelimit.effective_rate(None, slowdown, end - 1) is not None
    assert ratelimit.effective_rate(None, slowdown, end) is None


def test_a_claim_takes_no_more_of_a_limited_endpoint_than_its_allowance_leaves() -> None:
    """A limited endpoint at its allowance is skipped; below it, the claim is capped."""
    limits = EndpointLimits(send_cap=32)
    plan = plan_claim(limits, {"full": 4, "half": 1}, (), {"full": 4, "half": 4, "new": 40})
    assert "full" in plan.skip
    assert dict(plan.caps) == {"half": 3}


def test_a_hand_over_takes_no_more_of_a_limited_endpoint_than_a_claim_would() -> None:
    """The hand-over's room of a limited endpoint is what its allowance leaves."""
    limits = EndpointLimits(send_cap=32)
    offered = snapshot(limits, {"half": 1}, (), slots=100, allowances={"half": 4, "new": 2})
    assert sum(offered.take("half") for _ in range(10)) == 3
    assert sum(offered.take("new") for _ in range(10)) == 2
    assert sum(offered.take("free") for _ in range(100)) == limits.hold_cap


def test_a_grant_asks_for_what_recent_use_needs_when_more_than_what_waits() -> None:
    """A limit that does not bind still costs one grant per horizon: the worker asks for
    the horizon's worth of its recent use, never beyond its allowance."""
    assert ratelimit.slots_wanted(1, 500.0, 400) == 100
    assert ratelimit.slots_wanted(30, 10.0, 400) == 30
    assert ratelimit.slots_wanted(1, 10_000.0, 400) == 400


@pytest.mark.parametrize("seed", range(200))
def test_with_rate_limits_a_hand_over_never_admits_what_a_claim_would_refuse(seed: int) -> None:
    """Over generated loads, blocked endpoints and allowances: a claim takes no more of an
    endpoint than its room, a hand-over neither, and a claim skips an endpoint whose room is
    gone."""
    rng = random.Random(seed)
    limits = EndpointLimits(send_cap=rng.randint(1, 6))
    endpoints = [f"ep{n}" for n in range(6)]
    loads = {e: rng.randint(0, limits.hold_cap + 2) for e in endpoints if rng.random() < 0.6}
    blocked = {e for e in endpoints if rng.random() < 0.2}
    allowances = {e: rng.randint(1, 3 * limits.send_cap) for e in endpoints if rng.random() < 0.5}
    plan = plan_claim(limits, loads, blocked, allowances)
    caps = dict(plan.caps)
    offered = snapshot(limits, loads, blocked, rng.randint(0, 60), allowances)
    for endpoint in [*endpoints, "ep-new"]:
        load = loads.get(endpoint, 0)
        room = limits.room(load, endpoint in blocked, allowances.get(endpoint))
        taken = sum(offered.take(endpoint) for _ in range(3 * limits.hold_cap))
        assert taken <= room
        if endpoint in plan.skip:
            continue
        claimable = caps.get(endpoint, plan.per_endpoint)
        assert claimable <= room, (endpoint, load, claimable, room)


def test_the_rate_limit_state_says_where_the_limit_comes_from_and_when_it_recovers() -> None:
    """Without a slowdown, the limit and its source; slowed from 100 to 25, back at the
    limit two doublings later."""
    assert ratelimit.rate_limit_state(None, None, None, 0.0) == ratelimit.RateLimitState(None, None)
    assert ratelimit.rate_limit_state(None, 5, None, 0.0).source == "application"
    slowed = ratelimit.rate_limit_state(100, 5, Slowdown(25.0, 10.0), 10.0)
    assert (slowed.limit, slowed.source, slowed.current) == (100, "endpoint", 25.0)
    assert slowed.recovers_at == 10.0 + 2 * ratelimit.RECOVERY_SECONDS
    unlimited = ratelimit.rate_limit_state(None, None, Slowdown(3.0, 10.0), 10.0)
    assert unlimited.recovers_at == 10.0 + ratelimit.RECOVERY_DOUBLINGS * ratelimit.RECOVERY_SECONDS
