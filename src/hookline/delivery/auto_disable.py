"""The periodic auto-disable check: warn about, then disable, endpoints failing too long.

The worker records since when each endpoint has failed (``failing.py``); this check reads
the endpoints failing for at least half the period and takes the step each is due
(``domain.operational.due_step``): a warning at 50 % and at 80 % (``EndpointFailing``), the
disable at 100 %. Each step is taken once per failing period, by whichever process raises
the stored step first (``Store.advance_failure_step``), so any number of workers may run
the check. The disable itself is the operation's versioned update (``disable``), so a
change made to the endpoint at the same time is not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from hookline.domain.clock import utcnow
from hookline.domain.errors import Unavailable
from hookline.domain.operational import WARNING_FRACTIONS, FailureStep, due_step
from hookline.instrumentation import NO_INSTRUMENTATION, EndpointFailing, Instrumentation
from hookline.storage.base import EndpointFailure, Store

log = logging.getLogger("hookline.auto_disable")

MAX_INTERVAL_SECONDS = 60.0
PERIOD_SHARE_PER_CHECK = 50
"""The check runs at least this many times per period (a short period in tests)."""

Disable = Callable[[EndpointFailure], Awaitable[object]]


def check_interval(period: timedelta) -> float:
    return min(MAX_INTERVAL_SECONDS, period.total_seconds() / PERIOD_SHARE_PER_CHECK)


async def check_failing(
    store: Store,
    now: datetime,
    period: timedelta,
    disable: Disable,
    instrumentation: Instrumentation = NO_INSTRUMENTATION,
) -> list[tuple[str, FailureStep]]:
    """Take every step due now; return the (endpoint, step) pairs this call took."""
    earliest = period * WARNING_FRACTIONS[FailureStep.WARNED_HALF]
    taken: list[tuple[str, FailureStep]] = []
    for failure in await store.failing_endpoints(now - earliest):
        step = due_step(failure.failing_since, FailureStep(failure.step), now, period)
        if step is None:
            continue
        if not await store.advance_failure_step(failure.endpoint_id, failure.failing_since, step):
            continue
        taken.append((failure.endpoint_id, step))
        if step is FailureStep.DISABLED:
            await disable(failure)
        elif instrumentation.wants(EndpointFailing):
            instrumentation.emit(
                EndpointFailing(
                    failure.app_id,
                    failure.endpoint_id,
                    failure.endpoint_uid,
                    failure.failing_since,
                    failure.failing_since + period,
                )
            )
    return taken


async def run_auto_disable(
    store: Store,
    stop: asyncio.Event,
    period: timedelta,
    disable: Disable,
    instrumentation: Instrumentation = NO_INSTRUMENTATION,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Check until ``stop``; a store that cannot be reached skips one round."""
    interval = check_interval(period)
    while not stop.is_set():
        try:
            await check_failing(store, clock(), period, disable, instrumentation)
        except Unavailable as exc:
            log.warning("auto-disable check skipped: %s", exc)
        except Exception:
            log.exception("auto-disable check failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
