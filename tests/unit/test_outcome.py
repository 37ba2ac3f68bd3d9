"""The attempt-outcome state machine."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hookline.domain.outcome import Decision, Verdict, decide
from hookline.domain.retry import RetrySchedule

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SCHEDULE = RetrySchedule((5.0, 300.0), jitter=0.0)


def _decide(code: int, retry_after: str | None = None, attempts: int = 1) -> Decision:
    return decide(code, retry_after, attempts, SCHEDULE, NOW, random.Random(0))


@pytest.mark.parametrize("code", [200, 201, 202, 204, 299])
def test_2xx_succeeds(code: int) -> None:
    """Every 2xx is a success, with no wait."""
    assert _decide(code) == Decision(Verdict.SUCCEEDED, None)


def test_2xx_succeeds_even_after_the_last_attempt() -> None:
    """A success on the final attempt is a success, not an exhausted schedule."""
    assert _decide(200, attempts=3).verdict is Verdict.SUCCEEDED


@pytest.mark.parametrize(
    "code", [0, 100, 199, 300, 301, 302, 304, 307, 308, 400, 401, 404, 429, 500, 502, 503]
)
def test_other_codes_retry_on_schedule(code: int) -> None:
    """No response, 1xx, redirects (not followed), 4xx and 5xx are retried after the wait."""
    assert _decide(code) == Decision(Verdict.RETRY, 5.0)


def test_second_failure_waits_the_second_delay() -> None:
    """The wait follows the number of attempts already made."""
    assert _decide(500, attempts=2) == Decision(Verdict.RETRY, 300.0)


@pytest.mark.parametrize("code", [0, 302, 429, 500])
def test_exhausted_schedule_fails(code: int) -> None:
    """A failure after the last scheduled retry exhausts the delivery."""
    assert _decide(code, "60", attempts=3) == Decision(Verdict.EXHAUSTED, None)


@pytest.mark.parametrize("attempts", [1, 3])
def test_gone_retires_the_endpoint(attempts: int) -> None:
    """410 Gone asks for the endpoint to be disabled, whatever the schedule says."""
    assert _decide(410, "60", attempts) == Decision(Verdict.ENDPOINT_GONE, None)


@pytest.mark.parametrize("code", [429, 503])
def test_longer_retry_after_is_honoured_on_429_and_503(code: int) -> None:
    """On 429/503 a Retry-After longer than the scheduled wait replaces it."""
    assert _decide(code, "60") == Decision(Verdict.RETRY, 60.0)
    date = format_datetime(NOW + timedelta(seconds=120), usegmt=True)
    assert _decide(code, date) == Decision(Verdict.RETRY, 120.0)


def test_shorter_retry_after_never_shortens_the_wait() -> None:
    """A Retry-After shorter than the schedule is ignored in favour of the schedule."""
    assert _decide(503, "1").delay_seconds == 5.0


def test_retry_after_is_capped() -> None:
    """A huge Retry-After is cut to the cap so a receiver cannot park a delivery forever."""
    assert _decide(429, "999999").delay_seconds == 3600.0
    assert _decide(429, "9" * 400).delay_seconds == 3600.0
    capped = decide(429, "999", 1, SCHEDULE, NOW, random.Random(0), max_retry_after_seconds=30)
    assert capped.delay_seconds == 30.0


def test_cap_never_shortens_the_schedule() -> None:
    """A cap below the scheduled wait still leaves the scheduled wait."""
    capped = decide(429, "999", 2, SCHEDULE, NOW, random.Random(0), max_retry_after_seconds=30)
    assert capped.delay_seconds == 300.0


@pytest.mark.parametrize("code", [500, 502, 400])
def test_retry_after_is_ignored_on_other_statuses(code: int) -> None:
    """Only 429 and 503 may stretch the wait."""
    assert _decide(code, "60").delay_seconds == 5.0


def test_unparseable_retry_after_falls_back_to_schedule() -> None:
    """Junk in Retry-After leaves the scheduled wait."""
    assert _decide(503, "later").delay_seconds == 5.0


def test_jittered_waits_come_from_the_schedule() -> None:
    """With jitter the wait stays within the schedule's band."""
    schedule = RetrySchedule((100.0,), jitter=0.2)
    for seed in range(200):
        decision = decide(500, None, 1, schedule, NOW, random.Random(seed))
        assert decision.verdict is Verdict.RETRY
        assert decision.delay_seconds is not None and 80.0 <= decision.delay_seconds <= 120.0
