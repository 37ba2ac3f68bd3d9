"""The per-endpoint circuit breaker's rules."""

from __future__ import annotations

import pytest

from hookline.domain.breaker import Breaker, CircuitState, is_endpoint_failure


@pytest.mark.parametrize(
    ("status", "failure"),
    [(0, True), (500, True), (503, True), (429, True), (200, False), (404, False), (410, False)],
)
def test_only_silence_5xx_and_429_count_against_the_endpoint(status: int, failure: bool) -> None:
    """A 4xx other than 429 proves the endpoint is up; no answer, 5xx and 429 do not."""
    assert is_endpoint_failure(status) is failure


def test_opens_after_threshold_failures_in_a_row_and_blocks_until_the_cooldown() -> None:
    """Four failures leave it closed; the fifth opens it for the base cooldown."""
    breaker = Breaker(threshold=5, base_cooldown=5.0)
    for _ in range(4):
        breaker.record(0, 100.0)
    assert breaker.closed and breaker.admit(100.0)
    breaker.record(503, 100.0)
    assert not breaker.closed
    assert breaker.blocks(104.9) and not breaker.admit(104.9)
    assert breaker.hold_until(101.0) == 105.0


def test_an_answer_resets_the_count() -> None:
    """Failures must be consecutive: any healthy answer starts the count again."""
    breaker = Breaker(threshold=3)
    for status in (0, 0, 404, 0, 0):
        breaker.record(status, 1.0)
    assert breaker.closed


def test_half_open_admits_one_probe_and_its_success_closes() -> None:
    """After the cooldown exactly one attempt is admitted; others wait for its answer."""
    breaker = Breaker(threshold=1, base_cooldown=5.0)
    breaker.record(0, 0.0)
    assert breaker.admit(5.0)
    assert not breaker.admit(5.0) and breaker.blocks(5.0)
    assert breaker.hold_until(5.0) == 10.0
    breaker.record(200, 6.0)
    assert breaker.closed and not breaker.blocks(6.0) and breaker.failures == 0


def test_a_failed_probe_reopens_for_twice_as_long_up_to_the_ceiling() -> None:
    """Cooldowns double on each failed probe and stop at the ceiling."""
    breaker = Breaker(threshold=1, base_cooldown=5.0, max_cooldown=15.0)
    breaker.record(0, 0.0)
    cooldowns = []
    now = 0.0
    for _ in range(4):
        now = breaker.open_until or now
        assert breaker.admit(now)
        breaker.record(0, now)
        cooldowns.append(breaker.cooldown)
    assert cooldowns == [10.0, 15.0, 15.0, 15.0]


def test_state_is_what_an_open_breaker_shares_and_none_while_closed() -> None:
    """A closed breaker shares nothing; an open one its failures, end and cooldown."""
    breaker = Breaker(threshold=2, base_cooldown=5.0)
    breaker.record(0, 10.0)
    assert breaker.state is None
    breaker.record(0, 10.0)
    assert breaker.state == CircuitState(failures=2, open_until=15.0, cooldown=5.0)


def test_adopting_a_longer_hold_takes_it_and_ends_a_probe() -> None:
    """A closed or half-open breaker takes on a state that holds longer, probe included: the
    probe's failure then no longer re-opens it, its success still closes it."""
    breaker = Breaker(threshold=1, base_cooldown=5.0)
    breaker.record(0, 0.0)
    assert breaker.admit(5.0)
    breaker.adopt(CircuitState(failures=4, open_until=40.0, cooldown=20.0))
    assert breaker.blocks(39.0) and not breaker.probing
    assert (breaker.failures, breaker.cooldown) == (4, 20.0)
    breaker.record(0, 6.0)
    assert breaker.open_until == 40.0
    breaker.record(200, 7.0)
    assert breaker.closed


def test_adopting_a_shorter_hold_changes_nothing() -> None:
    """A state that ends before this breaker's own hold is older news and is ignored."""
    breaker = Breaker(threshold=1, base_cooldown=50.0)
    breaker.record(0, 0.0)
    breaker.adopt(CircuitState(failures=9, open_until=10.0, cooldown=10.0))
    assert (breaker.failures, breaker.open_until, breaker.cooldown) == (1, 50.0, 50.0)
