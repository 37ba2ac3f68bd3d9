"""The retry schedule: a pure function of the attempt number and an injected RNG.

Modelled on stamina's backoff: no clock and no sleeping here, so tests can check every
bound exactly. The default is Svix's schedule.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
DEFAULT_JITTER = 0.2
# RFC 9110 §10.2.3: delay-seconds = 1*DIGIT (ASCII digits only; no sign, no fraction).
_DELAY_SECONDS = re.compile(r"[0-9]+", re.ASCII)


@dataclass(frozen=True)
class RetrySchedule:
    """Waits in seconds after each failed attempt; attempts in all = ``len(delays) + 1``.

    Jitter spreads retries of many deliveries that failed together (one endpoint outage)
    so they do not come back as one burst.
    """

    delays: tuple[float, ...]
    jitter: float = DEFAULT_JITTER

    def __post_init__(self) -> None:
        for delay in self.delays:
            _check_seconds(delay, repr(delay))
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be a fraction between 0 and 1, not {self.jitter!r}")

    def next_delay(self, attempts_made: int, rng: random.Random) -> float | None:
        """The wait before attempt ``attempts_made + 1``, or None once the schedule is spent."""
        if attempts_made < 1:
            raise ValueError(f"attempts_made counts finished attempts, from 1: {attempts_made}")
        if attempts_made > len(self.delays):
            return None
        base = self.delays[attempts_made - 1]
        if not self.jitter:
            return base
        return base * (1 + rng.uniform(-self.jitter, self.jitter))

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


def _check_seconds(value: float, shown: str) -> None:
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"retry delay {shown} must be a finite, non-negative number of seconds")


def parse_schedule(text: str) -> RetrySchedule:
    """Parse ``HOOKLINE_RETRY_SCHEDULE``; an empty value means one attempt and no retries."""
    if not text.strip():
        return RetrySchedule(())
    delays: list[float] = []
    for part in (p.strip() for p in text.split(",")):
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"retry schedule entry {part!r} is not a number of seconds; "
                "expected comma-separated seconds such as '5,300,1800'"
            ) from None
        _check_seconds(value, repr(part))
        delays.append(value)
    return RetrySchedule(tuple(delays))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date.

    None when absent, unparseable or in the past, so the caller falls back to its schedule.
    ``now`` must be timezone-aware.
    """
    text = (value or "").strip()
    if not text:
        return None
    if _DELAY_SECONDS.fullmatch(text):
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        # RFC 9110 §5.6.7: an HTTP-date is always UTC; asctime() dates carry no zone.
        when = when.replace(tzinfo=UTC)
    seconds = (when - now).total_seconds()
    return seconds if seconds >= 0 else None
