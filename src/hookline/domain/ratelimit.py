"""Rate limits, the pure rule: an endpoint's messages per second, as send slots on one shared
timeline, and how a receiver's ``Retry-After`` slows it for a while.

**The limit.** An endpoint's ``throttleRate`` (its ``rateLimit`` in the SDK), else its
application's, in messages per second; None means unlimited, the default.

**Slots.** Every worker takes its right to send from one timeline per endpoint, kept in the
store (``Store.take_rate_slots``): the time of the endpoint's next free slot. A grant of
``n`` slots starting at ``first`` moves it to ``first + n * interval``; slot ``i`` may be sent
at ``first + i * interval`` (the generic cell rate algorithm, with reservations). Two
properties follow, whatever the number of workers:

- no window of any length holds more than its length (plus ``EARLY_SLOT_SECONDS``) times
  the rate, plus one: the slots of all workers are spaced ``interval`` apart on the one
  timeline, and a slot is never sent more than ``EARLY_SLOT_SECONDS`` before its time;
- nothing can be hoarded: a grant reaches at most ``GRANT_HORIZON_SECONDS`` beyond now, and
  a slot not used by its time (within ``LATE_SLOT_SECONDS``) is simply gone (a worker that
  dies with slots in hand costs the endpoint at most that horizon), so an idle endpoint
  earns no burst either.

A worker asks for as many slots as it has deliveries waiting, or as its recent use of the
endpoint's slots suggests it will need over the horizon if that is more (``slots_wanted``),
so the store sees about one statement per limited endpoint per ``GRANT_HORIZON_SECONDS``
whether the limit binds or not (docs/performance-decisions.md), and an unlimited endpoint
never asks.

**Slowing down.** A 429 or 503 with ``Retry-After`` halves the endpoint's current rate
(``slowed_rate``), never below ``MIN_RATE``; the slowed rate then doubles every
``RECOVERY_SECONDS`` until it is back at the endpoint's own limit or, for an endpoint without
one, ``RECOVERY_DOUBLINGS`` doublings later. The slowdown is shared through the store as well.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GRANT_HORIZON_SECONDS = 0.2
"""How far beyond now one grant of slots may reach."""

EARLY_SLOT_SECONDS = 0.001
"""A slot due within this long is used at once rather than waited for: the event loop's
timers are no finer (a shorter wait still costs a timer and a turn of the loop), and a limit
far above what is sent hands out slots microseconds apart, so waiting for each would put a
timer on every delivery of an endpoint whose limit never binds."""

LATE_SLOT_SECONDS = 0.05
"""A slot not used within this long of its time is given up, and the delivery waits for a
new one: sent late, it would go out beside the slots of now, over the rate (a worker the
machine did not run for a while would send a burst)."""

HOLD_SECONDS = 2.0
"""A worker holds at most this many seconds' worth of a limited endpoint's deliveries
(sending and waiting for their slots), so the rest stay claimable by other workers."""

RECOVERY_SECONDS = 10.0
"""A slowed endpoint's rate doubles every this many seconds."""

RECOVERY_DOUBLINGS = 6
"""An endpoint without a limit of its own is back to unlimited after this many doublings."""

MIN_RATE = 1.0
"""A receiver's ``Retry-After`` never slows an endpoint below this many messages per second."""

_US = 1_000_000
HORIZON_US = int(GRANT_HORIZON_SECONDS * _US)


def rate_limit(endpoint_rate: int | None, app_rate: int | None) -> int | None:
    """An endpoint's limit: its own if set, else its application's."""
    return endpoint_rate if endpoint_rate is not None else app_rate


def interval_us(rate: float) -> int:
    """Microseconds between two slots at ``rate`` messages per second."""
    return max(1, round(_US / rate))


def hold_allowance(rate: float) -> int:
    """Deliveries of an endpoint limited to ``rate`` one worker may hold at once."""
    return max(1, math.ceil(rate * HOLD_SECONDS))


@dataclass(frozen=True, slots=True)
class SlotRequest:
    """One worker's request for ``wanted`` slots of an endpoint at ``rate``."""

    endpoint_id: str
    rate: float
    wanted: int

    @property
    def interval_us(self) -> int:
        return interval_us(self.rate)


@dataclass(frozen=True, slots=True)
class Slowdown:
    """An endpoint slowed to ``rate`` at ``since`` (epoch seconds) by a receiver's answer."""

    rate: float
    since: float

    def rate_at(self, now: float) -> float:
        """The slowed rate at ``now``: doubled for every ``RECOVERY_SECONDS`` since."""
        doublings = min(max(0.0, now - self.since) / RECOVERY_SECONDS, RECOVERY_DOUBLINGS)
        return float(self.rate * 2.0**doublings)

    def over(self, now: float, limit: float | None) -> bool:
        """Whether the endpoint is back to its own limit (or to none) at ``now``."""
        if now - self.since >= RECOVERY_SECONDS * RECOVERY_DOUBLINGS:
            return True
        return limit is not None and self.rate_at(now) >= limit


@dataclass(frozen=True, slots=True)
class SlotGrant:
    """``count`` slots of an endpoint, the first at ``first_us`` (epoch microseconds),
    ``interval_us`` apart; and the endpoint's slowdown as the store holds it."""

    first_us: int
    count: int
    interval_us: int
    next_free_us: int
    slowdown: Slowdown | None = None

    def times(self) -> list[float]:
        """When each slot may be used, in epoch seconds."""
        return [(self.first_us + i * self.interval_us) / _US for i in range(self.count)]


def grant_from(next_slot_us: int, granted: int, interval: int) -> tuple[int, int]:
    """The first slot and count of a grant, from the timeline it left (``next_slot_us``)."""
    return next_slot_us - granted * interval, granted


def fresh_grant(request: SlotRequest, now_us: int) -> tuple[int, int]:
    """What a first grant on an endpoint's empty timeline gives: (next free slot, count)."""
    interval = request.interval_us
    count = min(request.wanted, slots_within(now_us, now_us + HORIZON_US, interval))
    return now_us + count * interval, count


def slots_within(start_us: int, reach_us: int, interval: int) -> int:
    """Slots from ``start_us`` on, ``interval`` apart, that fall at or before ``reach_us``
    (the store's statement computes the same, ``take_rate_slots``)."""
    return max(0, reach_us - start_us + interval) // interval


def effective_rate(limit: float | None, slowdown: Slowdown | None, now: float) -> float | None:
    """The rate an endpoint may be sent at now: its limit, lowered while it is slowed down."""
    if slowdown is None or slowdown.over(now, limit):
        return limit
    slowed = slowdown.rate_at(now)
    return slowed if limit is None else min(limit, slowed)


def slowed_rate(current: float) -> float:
    """The rate an endpoint is slowed to when a receiver answers 429/503 with
    ``Retry-After`` while it is sent at ``current`` messages per second."""
    return max(MIN_RATE, current / 2.0)


SLOWDOWN_SPACING_SECONDS = 1.0
"""Answers within this long of a slowdown belong to it: the requests already under way when
a receiver first said 429 all say it too, and must not halve the rate again each."""

SLOWED_STATUSES = frozenset({429, 503})
"""The answers whose ``Retry-After`` slows an endpoint down (RFC 6585 §4, RFC 9110 §15.6.4)."""


def slow_down(
    status_code: int,
    retry_after: str | None,
    current: Slowdown | None,
    rate: float | None,
    observed: float,
    now: float,
) -> Slowdown | None:
    """The endpoint's new slowdown after an answer, or None if the answer changes nothing.

    ``rate`` is the rate the endpoint is sent at now (its limit, lowered by ``current``);
    without one, ``observed`` estimates it (what the worker has under way over the answer's
    time, by Little's law)."""
    if status_code not in SLOWED_STATUSES or retry_after is None:
        return None
    if current is not None and now - current.since < SLOWDOWN_SPACING_SECONDS:
        return None
    return Slowdown(slowed_rate(rate if rate is not None else observed), now)


def slots_wanted(waiting: int, used_per_second: float, allowance: int) -> int:
    """How many slots to ask for: those deliveries ``waiting`` now need, or, if more, what
    the recent use would need over the horizon (so that a limit that does not bind costs a
    grant per horizon, not one per delivery); never more than ``allowance``."""
    expected = math.ceil(used_per_second * GRANT_HORIZON_SECONDS)
    return max(waiting, min(expected, allowance))


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """What an endpoint's rate limit is now, for people: the limit that applies and where it
    comes from, and, while a receiver's ``Retry-After`` has it slowed down, the rate it is
    sent at and when it is back to its limit (epoch seconds)."""

    limit: int | None
    source: str | None
    """``"endpoint"``, ``"application"``, or None without a limit."""
    current: float | None = None
    recovers_at: float | None = None


def rate_limit_state(
    endpoint_rate: int | None, app_rate: int | None, slowdown: Slowdown | None, now: float
) -> RateLimitState:
    limit = rate_limit(endpoint_rate, app_rate)
    source = "endpoint" if endpoint_rate is not None else "application" if app_rate else None
    if slowdown is None or slowdown.over(now, limit):
        return RateLimitState(limit, source)
    doublings = RECOVERY_DOUBLINGS
    if limit is not None:
        doublings = min(doublings, math.ceil(math.log2(max(1.0, limit / slowdown.rate))))
    recovers_at = slowdown.since + doublings * RECOVERY_SECONDS
    return RateLimitState(limit, source, effective_rate(limit, slowdown, now), recovers_at)
