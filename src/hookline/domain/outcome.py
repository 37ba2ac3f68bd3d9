"""What one attempt's result does to its delivery: the delivery state machine.

Rules from DESIGN.md "Delivery semantics": success is a 2xx, redirects are not followed,
``Retry-After`` on 429/503 is honoured within bounds, and 410 Gone disables the endpoint.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from hookline.domain.retry import RetrySchedule, parse_retry_after

# RFC 9110 §10.2.3 names 503 for Retry-After and RFC 6585 §4 adds 429 Too Many Requests.
RETRY_AFTER_STATUSES = frozenset({429, 503})
MAX_RETRY_AFTER_SECONDS = 3600.0


class Verdict(Enum):
    """ENDPOINT_GONE fails the delivery and disables the endpoint, since 410 is permanent."""

    SUCCEEDED = "succeeded"
    RETRY = "retry"
    EXHAUSTED = "exhausted"
    ENDPOINT_GONE = "endpoint_gone"


@dataclass(frozen=True)
class Decision:
    """``delay_seconds`` is set only for RETRY: the wait before the next attempt."""

    verdict: Verdict
    delay_seconds: float | None = None


def decide(
    status_code: int,
    retry_after: str | None,
    attempts_made: int,
    schedule: RetrySchedule,
    now: datetime,
    rng: random.Random,
    max_retry_after_seconds: float = MAX_RETRY_AFTER_SECONDS,
    deadline: datetime | None = None,
) -> Decision:
    """2xx succeeds; 410 Gone retires the endpoint; anything else is retried while it can be.

    Redirects (3xx) are not followed and count as failures, and so does status 0 (no
    response). A ``Retry-After`` on 429/503 can lengthen the wait, never shorten it, and is
    capped so a hostile receiver cannot park a delivery forever. ``deadline`` is the last
    moment an attempt may start (the retry policy's maximum age): a retry that would start
    after it is not scheduled, the delivery is exhausted instead.
    """
    if 200 <= status_code < 300:
        return Decision(Verdict.SUCCEEDED)
    if status_code == 410:
        return Decision(Verdict.ENDPOINT_GONE)
    delay = schedule.next_delay(attempts_made, rng)
    if delay is None:
        return Decision(Verdict.EXHAUSTED)
    if status_code in RETRY_AFTER_STATUSES:
        asked = parse_retry_after(retry_after, now)
        if asked is not None:
            delay = max(delay, min(asked, max_retry_after_seconds))
    if deadline is not None and now + timedelta(seconds=delay) > deadline:
        return Decision(Verdict.EXHAUSTED)
    return Decision(Verdict.RETRY, delay)
