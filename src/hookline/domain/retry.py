"""The retry schedule: a pure function of the attempt number and an injected RNG.

Modelled on stamina's backoff: no clock and no sleeping here, so tests can check every
bound exactly. The default is Svix's schedule.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

DEFAULT_SCHEDULE = "5,300,1800,7200,18000,36000,36000"
DEFAULT_JITTER = 0.2


@dataclass(frozen=True)
class RetrySchedule:
    """Waits in seconds after each failed attempt; attempts in all = ``len(delays) + 1``."""

    delays: tuple[float, ...]
    jitter: float = DEFAULT_JITTER

    def next_delay(self, attempts_made: int, rng: random.Random) -> float | None:
        """The wait before attempt ``attempts_made + 1``, or None once the schedule is spent."""
        if attempts_made < 1 or attempts_made > len(self.delays):
            return None
        base = self.delays[attempts_made - 1]
        if not self.jitter:
            return base
        return base * (1 + rng.uniform(-self.jitter, self.jitter))

    @property
    def max_attempts(self) -> int:
        return len(self.delays) + 1


def parse_schedule(text: str) -> RetrySchedule:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip():
        return RetrySchedule(())
    delays: list[float] = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{part!r} is not a number of seconds; expected e.g. '5,300,1800'"
            ) from None
        if value < 0 or value != value or value == float("inf"):
            raise ValueError(f"{part!r} must be a finite, non-negative number of seconds")
        delays.append(value)
    return RetrySchedule(tuple(delays))


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds asked for by ``Retry-After`` (RFC 9110 §10.2.3): delay-seconds or an HTTP-date."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    seconds = (when - now).total_seconds()
    return seconds if seconds >= 0 else None
