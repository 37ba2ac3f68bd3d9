"""Retry schedule math and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from hookline.domain.retry import (
    DEFAULT_SCHEDULE,
    RetrySchedule,
    parse_retry_after,
    parse_schedule,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_default_schedule_is_svix() -> None:
    """The default schedule is Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h."""
    schedule = parse_schedule(DEFAULT_SCHEDULE)
    assert schedule.delays == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert schedule.max_attempts == 8
    assert schedule.jitter == 0.2


def test_schedule_accepts_fractions_and_spaces() -> None:
    """Sub-second waits and spaces around entries parse."""
    assert parse_schedule("0.05, 0.1").delays == (0.05, 0.1)
    assert parse_schedule(" 0 ,1e2").delays == (0.0, 100.0)


def test_empty_schedule_means_a_single_attempt() -> None:
    """An empty setting allows no retries: one attempt and the delivery is decided."""
    schedule = parse_schedule("  ")
    assert schedule.delays == () and schedule.max_attempts == 1
    assert schedule.next_delay(1, random.Random(0)) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("5,soon", "'soon' is not a number"),
        ("5,,10", "'' is not a number"),
        ("5;10", "'5;10' is not a number"),
        ("5,-1", "non-negative"),
        ("nan", "finite"),
        ("5,inf", "finite"),
    ],
)
def test_schedule_rejects_junk_with_a_clear_message(text: str, message: str) -> None:
    """Words, empty entries, wrong separators, negatives, NaN and infinity are refused by name."""
    with pytest.raises(ValueError, match=message):
        parse_schedule(text)


@pytest.mark.parametrize(
    ("delays", "jitter"), [((-1.0,), 0.2), ((float("nan"),), 0.2), ((1.0,), -0.1), ((1.0,), 1.5)]
)
def test_schedule_refuses_impossible_values(delays: tuple[float, ...], jitter: float) -> None:
    """A schedule built in code is checked too: no negative waits, jitter within 0..1."""
    with pytest.raises(ValueError, match=r"delay|jitter"):
        RetrySchedule(delays, jitter)


def test_first_wait_follows_the_first_attempt() -> None:
    """After attempt n the wait is delays[n-1]; attempts in all are len(delays) + 1."""
    schedule = RetrySchedule((1.0, 2.0, 3.0), jitter=0.0)
    rng = random.Random(0)
    assert [schedule.next_delay(n, rng) for n in (1, 2, 3, 4, 5)] == [1.0, 2.0, 3.0, None, None]
    assert schedule.max_attempts == 4


def test_attempts_made_counts_from_one() -> None:
    """Asking for the wait before any attempt is a caller bug, not an exhausted schedule."""
    with pytest.raises(ValueError, match="from 1"):
        RetrySchedule((1.0,)).next_delay(0, random.Random(0))


def test_jitter_stays_within_its_fraction_over_many_seeds() -> None:
    """Over many seeds every wait lies within ±20 % of the scheduled one."""
    schedule = RetrySchedule((10.0, 100.0))
    for seed in range(2000):
        rng = random.Random(seed)
        first = schedule.next_delay(1, rng)
        second = schedule.next_delay(2, rng)
        assert first is not None and 8.0 <= first <= 12.0
        assert second is not None and 80.0 <= second <= 120.0


def test_jitter_uses_its_whole_range() -> None:
    """Jitter spreads retries across the band: seeds reach both ends and vary widely."""
    schedule = RetrySchedule((100.0,), jitter=0.5)
    waits = [schedule.next_delay(1, random.Random(seed)) for seed in range(2000)]
    assert all(w is not None for w in waits)
    values = [w for w in waits if w is not None]
    assert len(set(values)) > 1900
    assert min(values) < 52.0 and max(values) > 148.0
    assert all(50.0 <= w <= 150.0 for w in values)


def test_same_seed_gives_same_waits() -> None:
    """The schedule is a pure function of its inputs and the injected RNG."""
    schedule = RetrySchedule((5.0, 300.0))
    first = [schedule.next_delay(n, random.Random(7)) for n in (1, 2)]
    again = [schedule.next_delay(n, random.Random(7)) for n in (1, 2)]
    assert first == again


def test_zero_wait_stays_zero_with_jitter() -> None:
    """A zero entry means retry at once, whatever the jitter."""
    assert RetrySchedule((0.0,)).next_delay(1, random.Random(3)) == 0.0


def test_retry_after_delay_seconds() -> None:
    """Retry-After as delay-seconds (RFC 9110 §10.2.3) is read as a number of seconds."""
    assert parse_retry_after("120", NOW) == 120.0
    assert parse_retry_after(" 0 ", NOW) == 0.0


@pytest.mark.parametrize(
    "spelling",
    [
        "Thu, 01 Jan 2026 00:01:30 GMT",  # IMF-fixdate, the preferred form
        "Thursday, 01-Jan-26 00:01:30 GMT",  # obsolete RFC 850 form
        "Thu Jan  1 00:01:30 2026",  # obsolete asctime form, implicitly UTC
    ],
)
def test_retry_after_http_date_in_all_three_formats(spelling: str) -> None:
    """Retry-After as an HTTP-date is read in every format RFC 9110 §5.6.7 requires."""
    assert parse_retry_after(spelling, NOW) == 90.0


def test_retry_after_http_date_relative_to_now_in_any_timezone() -> None:
    """The wait is the date minus now, whichever timezone now is expressed in."""
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    elsewhere = NOW.astimezone(datetime.now().astimezone().tzinfo)
    assert parse_retry_after(later, elsewhere) == 90.0


@pytest.mark.parametrize(
    "value",
    [None, "", "   ", "soon", "-5", "+5", "1.5", "5 s", "١٢٠", "Thu, 32 Jan 2026 00:00:00 GMT"],
)
def test_retry_after_ignores_absent_or_unparseable_values(value: str | None) -> None:
    """Absent, signed, fractional, non-ASCII or malformed values give no wait."""
    assert parse_retry_after(value, NOW) is None


def test_retry_after_in_the_past_is_ignored() -> None:
    """An HTTP-date already past asks for nothing."""
    earlier = format_datetime(NOW - timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(earlier, NOW) is None
