"""Retry schedule math and the attempt-outcome state machine."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hookline.domain.outcome import Verdict, decide
from hookline.domain.retry import (
    DEFAULT_SCHEDULE,
    RetrySchedule,
    parse_retry_after,
    parse_schedule,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_schedule_is_svix() -> None:
    """The default schedule is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h."""
    assert parse_schedule(DEFAULT_SCHEDULE).delays == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert parse_schedule(DEFAULT_SCHEDULE).max_attempts == 8


def test_schedule_accepts_fractions_and_rejects_junk() -> None:
    """Sub-second waits parse; words and negative numbers are refused with a clear message."""
    assert parse_schedule("0.05, 0.1").delays == (0.05, 0.1)
    with pytest.raises(ValueError, match="not a number"):
        parse_schedule("5,soon")
    with pytest.raises(ValueError, match="non-negative"):
        parse_schedule("5,-1")


def test_jitter_stays_within_twenty_percent() -> None:
    """Over many seeds every wait lies within ±20 % of the scheduled one."""
    schedule = RetrySchedule((10.0, 100.0))
    for seed in range(2000):
        rng = random.Random(seed)
        first = schedule.next_delay(1, rng)
        second = schedule.next_delay(2, rng)
        assert first is not None and 8.0 <= first <= 12.0
        assert second is not None and 80.0 <= second <= 120.0


def test_jitter_actually_varies() -> None:
    """Jitter spreads retries: different seeds give different waits."""
    schedule = RetrySchedule((10.0,))
    waits = {schedule.next_delay(1, random.Random(seed)) for seed in range(50)}
    assert len(waits) > 40


def test_schedule_is_exhausted_after_its_last_entry() -> None:
    """After len(delays) failed attempts there is no further wait."""
    schedule = RetrySchedule((1.0, 2.0), jitter=0.0)
    rng = random.Random(0)
    assert [schedule.next_delay(n, rng) for n in (1, 2, 3)] == [1.0, 2.0, None]


def test_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as delay-seconds or as an HTTP-date; junk and the past are ignored."""
    assert parse_retry_after("120", NOW) == 120.0
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(later, NOW) == 90.0
    earlier = format_datetime(NOW - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, NOW) is None
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


SCHEDULE = RetrySchedule((5.0, 300.0), jitter=0.0)


@pytest.mark.parametrize("code", [200, 201, 204, 299])
def test_2xx_succeeds(code: int) -> None:
    """Every 2xx is a success."""
    assert decide(code, None, 1, SCHEDULE, NOW, random.Random(0)).verdict is Verdict.SUCCEEDED


@pytest.mark.parametrize("code", [0, 301, 302, 400, 404, 429, 500, 503])
def test_other_codes_retry_on_schedule(code: int) -> None:
    """No response, redirects, 4xx and 5xx are retried after the scheduled wait."""
    decision = decide(code, None, 1, SCHEDULE, NOW, random.Random(0))
    assert (decision.verdict, decision.delay_seconds) == (Verdict.RETRY, 5.0)


def test_exhausted_schedule_fails() -> None:
    """A failure after the last scheduled retry exhausts the delivery."""
    assert decide(500, None, 3, SCHEDULE, NOW, random.Random(0)).verdict is Verdict.EXHAUSTED


def test_gone_retires_the_endpoint() -> None:
    """410 Gone asks for the endpoint to be disabled, whatever the schedule says."""
    assert decide(410, None, 1, SCHEDULE, NOW, random.Random(0)).verdict is Verdict.ENDPOINT_GONE


def test_retry_after_lengthens_but_never_shortens_and_is_capped() -> None:
    """On 429/503 a longer Retry-After is honoured up to the cap; a shorter one is not."""
    rng = random.Random(0)
    assert decide(429, "60", 1, SCHEDULE, NOW, rng).delay_seconds == 60.0
    assert decide(503, "1", 1, SCHEDULE, NOW, rng).delay_seconds == 5.0
    assert decide(503, "999999", 1, SCHEDULE, NOW, rng).delay_seconds == 3600.0
    assert decide(500, "60", 1, SCHEDULE, NOW, rng).delay_seconds == 5.0
