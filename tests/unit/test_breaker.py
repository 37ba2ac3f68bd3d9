"""The per-endpoint circuit breaker's rules: both opening rules, the half-open probe shared
through the store, and what a 429/503 with Retry-After does."""

from __future__ import annotations

import pytest

from hookline.domain.breaker import (
    Breaker,
    BreakerSettings,
    CircuitState,
    Phase,
    ProbeGrant,
    Reason,
    Window,
    is_endpoint_failure,
    is_throttled,
)
from hookline.domain.policy import BreakerPolicy


def breaker(**settings: float) -> Breaker:
    return Breaker(BreakerSettings(**settings))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "failure"),
    [(0, True), (500, True), (503, True), (429, True), (200, False), (404, False), (410, False)],
)
def test_only_silence_5xx_and_429_count_against_the_endpoint(status: int, failure: bool) -> None:
    """A 4xx other than 429 proves the endpoint is up; no answer, 5xx and 429 do not."""
    assert is_endpoint_failure(status) is failure


def test_only_429_and_503_with_retry_after_are_throttling() -> None:
    """Retry-After on a 429 or 503 asks for less; on another status, or absent, it does not."""
    assert is_throttled(429, "5") and is_throttled(503, "Wed, 21 Oct 2026 07:28:00 GMT")
    assert not is_throttled(429, None) and not is_throttled(500, "5")


def test_opens_after_threshold_failures_in_a_row_and_blocks_until_the_cooldown() -> None:
    """Four failures leave it closed; the fifth opens it for the cooldown."""
    b = breaker(threshold=5, cooldown=5.0)
    for _ in range(4):
        assert b.record(0, None, 100.0) is None
    assert b.closed and not b.blocks(100.0)
    opened = b.record(503, None, 100.0)
    assert opened is not None and opened.reason is Reason.CONSECUTIVE_FAILURES
    assert (opened.open_until, opened.opened_at, opened.failures) == (105.0, 100.0, 5)
    assert b.blocks(104.9) and not b.wants_probe(104.9)
    assert b.hold_until(101.0) == 105.0


def test_an_answer_resets_the_count() -> None:
    """Failures must be consecutive: any healthy answer starts the count again."""
    b = breaker(threshold=3)
    for status in (0, 0, 404, 0, 0):
        b.record(status, None, 1.0)
    assert b.closed


def test_a_failure_ratio_over_the_window_opens_once_the_window_holds_enough() -> None:
    """Failures interrupted by successes never reach the count in a row; the ratio rule opens
    once min_attempts are in the window and the failed share reaches the ratio."""
    b = breaker(threshold=5, failure_ratio=0.75, window_seconds=60.0, min_attempts=8)
    pattern = [0, 0, 0, 200] * 2  # 6 of 8 failed: 0.75, never 4 in a row
    opened = None
    for n, status in enumerate(pattern):
        assert opened is None, f"opened too early, at attempt {n}"
        opened = b.record(status, None, float(n))
    assert opened is None, "the last answer was a success, which closes"
    opened = b.record(0, None, 8.0)
    assert opened is not None and opened.reason is Reason.FAILURE_RATIO
    assert opened.failure_ratio == pytest.approx(7 / 9)


def test_the_ratio_window_forgets_attempts_older_than_its_length() -> None:
    """Failures that slid out of the window no longer count toward the ratio."""
    window = Window(60.0)
    for t in range(10):
        window.add(float(t), failed=True)
    window.add(30.0, failed=False)
    assert window.counts(30.0) == (11, 10)
    assert window.counts(75.0) == (1, 0)
    assert window.counts(200.0) == (0, 0)


def test_two_failures_in_three_never_open_the_default_breaker() -> None:
    """The defaults leave an endpoint that still answers one attempt in three alone (the
    starvation measurement in docs/delivery.md)."""
    b = Breaker(BreakerSettings())
    for n in range(300):
        assert b.record(0 if n % 3 else 200, None, n * 0.1) is None


def test_half_open_bids_once_and_a_granted_probe_that_succeeds_closes() -> None:
    """After the cooldown one delivery bids for the probe; others hold while it is out."""
    b = breaker(threshold=1, cooldown=5.0)
    b.record(0, None, 0.0)
    assert b.wants_probe(5.0)
    assert not b.wants_probe(5.0) and b.blocks(5.0)
    b.probe_granted(ProbeGrant.GRANTED, None)
    assert b.hold_until(5.0) == 10.0
    b.record(200, None, 6.0)
    assert b.closed and not b.blocks(6.0) and b.failures == 0


def test_a_probe_another_worker_holds_makes_this_one_wait_for_its_lease() -> None:
    """TAKEN: the store's circuit, with the other worker's probe lease, is held here too."""
    b = breaker(threshold=1, cooldown=5.0)
    b.record(0, None, 0.0)
    assert b.wants_probe(5.0)
    theirs = CircuitState(1, 5.0, 5.0, 0.0, None, Reason.CONSECUTIVE_FAILURES, probe_until=25.0)
    b.probe_granted(ProbeGrant.TAKEN, theirs)
    assert b.blocks(24.0) and not b.wants_probe(24.0)
    assert b.hold_until(10.0) == 15.0, "a held delivery comes back one cooldown later"
    assert b.wants_probe(25.0), "a probe lease that ran out lets another worker bid"


def test_a_circuit_another_worker_closed_closes_here() -> None:
    """CLOSED: the bid found no circuit (another worker's probe succeeded): send freely."""
    b = breaker(threshold=1, cooldown=5.0)
    b.record(0, None, 0.0)
    assert b.wants_probe(5.0)
    b.probe_granted(ProbeGrant.CLOSED, None)
    assert b.closed and not b.blocks(5.0)


def test_a_failed_probe_reopens_for_twice_as_long_up_to_the_ceiling() -> None:
    """Cooldowns double on each failed probe and stop at the ceiling; the episode keeps the
    time it began and the rule that opened it."""
    b = breaker(threshold=1, cooldown=5.0, max_cooldown=15.0)
    b.record(0, None, 0.0)
    cooldowns = []
    for _ in range(4):
        assert b.state is not None
        now = b.state.open_until
        assert b.wants_probe(now)
        b.probe_granted(ProbeGrant.GRANTED, None)
        reopened = b.record(0, None, now)
        assert reopened is not None and reopened.opened_at == 0.0
        cooldowns.append(reopened.cooldown)
    assert cooldowns == [10.0, 15.0, 15.0, 15.0]


def test_throttling_does_not_open_the_breaker_until_it_persists() -> None:
    """429 with Retry-After, threshold times in a row, opens nothing before throttle_seconds
    of nothing else; after that it opens with reason throttled."""
    b = breaker(threshold=3, throttle_seconds=60.0)
    for t in (0.0, 10.0, 20.0, 59.0):
        assert b.record(429, "5", t) is None
    assert b.failures == 0, "throttling is not a failure"
    opened = b.record(503, "5", 60.0)
    assert opened is not None and opened.reason is Reason.THROTTLED


def test_any_other_answer_ends_a_throttling_spell() -> None:
    """A spell must be unbroken: a success or a plain failure starts it again."""
    b = breaker(threshold=2, throttle_seconds=10.0)
    b.record(429, "1", 0.0)
    b.record(200, None, 5.0)
    b.record(429, "1", 6.0)
    assert b.record(429, "1", 12.0) is None
    assert b.record(429, "1", 16.0) is not None


def test_throttled_answers_do_not_reset_the_failures_in_a_row() -> None:
    """A receiver that alternates 503s and 429s with Retry-After is not proving it is up."""
    b = breaker(threshold=3)
    b.record(500, None, 0.0)
    b.record(429, "1", 0.0)
    b.record(500, None, 0.0)
    assert b.record(500, None, 0.0) is not None


def test_adopting_the_stores_circuit_and_its_absence() -> None:
    """A longer hold is taken on; a shorter one is older news; no circuit at all in the store
    closes one held here (another worker's probe succeeded), but never disturbs a probe this
    worker has out."""
    b = breaker(threshold=1, cooldown=50.0)
    b.record(0, None, 0.0)
    assert not b.adopt(CircuitState(9, 10.0, 10.0))
    assert b.state is not None and b.state.open_until == 50.0
    assert not b.adopt(CircuitState(4, 80.0, 20.0))
    assert b.state is not None and b.state.open_until == 80.0 and b.failures == 4
    assert b.adopt(None) and b.closed
    b.record(0, None, 100.0)
    assert b.wants_probe(150.0)
    assert not b.adopt(None) and not b.closed


def test_settings_from_the_endpoint_policy_win_field_by_field() -> None:
    """An endpoint's breaker policy overrides what it sets and inherits the rest."""
    server = BreakerSettings(threshold=5, failure_ratio=0.9, cooldown=5.0)
    mine = server.over(BreakerPolicy(threshold=2, window_seconds=10.0))
    assert (mine.threshold, mine.failure_ratio, mine.window_seconds, mine.cooldown) == (
        2,
        0.9,
        10.0,
        5.0,
    )
    assert server.over(None) is server


def test_a_circuit_is_half_open_once_its_cooldown_is_over() -> None:
    """The phase the API shows: open until open_until, half-open after."""
    state = CircuitState(5, 10.0, 5.0)
    assert state.phase(9.9) is Phase.OPEN and state.phase(10.0) is Phase.HALF_OPEN
