"""``Pacing``, the worker's side of rate limits, with a scripted store: slots are handed out
in order, a late slot is given up for a new one, a failed grant is retried, and a stopping
worker's waiting deliveries go back."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from hookline.delivery.pacing import Pacing
from hookline.domain import ratelimit
from hookline.domain.errors import Unavailable
from hookline.domain.ratelimit import SlotGrant, SlotRequest
from tests.conftest import make_app, make_endpoint


@dataclass
class Store:
    """Grants from a script of first-slot offsets (seconds from now), then now; records
    every request. ``fail`` raises on that many grants first."""

    offsets: list[float] = field(default_factory=list)
    fail: int = 0
    requests: list[SlotRequest] = field(default_factory=list)

    async def take(self, requests: Sequence[SlotRequest], now: datetime) -> Mapping[str, SlotGrant]:
        if self.fail:
            self.fail -= 1
            raise Unavailable("down")
        self.requests.extend(requests)
        offset = self.offsets.pop(0) if self.offsets else 0.0
        first = int((now.timestamp() + offset) * 1_000_000)
        return {
            r.endpoint_id: SlotGrant(first, 1, r.interval_us, first + r.interval_us)
            for r in requests
        }

    async def slow(self, endpoint_id: str, rate: float, now: datetime) -> None:
        return None


def pacing(store: Store) -> Pacing:
    endpoint = replace(make_endpoint(make_app()), id="ep", throttle_rate=100)
    paced = Pacing(store.take, store.slow, lambda: datetime.now(UTC))
    paced.note(endpoint)
    return paced


async def test_an_unlimited_endpoint_is_not_paced() -> None:
    """An endpoint without a limit is unknown to pacing: no slot is ever asked for it."""
    paced = Pacing(Store().take, Store().slow, lambda: datetime.now(UTC))
    paced.note(make_endpoint(make_app()))
    assert paced.paced("ep") is False and paced.allowances() == {}


async def test_a_slot_that_came_too_late_is_given_up_for_a_new_one() -> None:
    """A slot already older than the lateness bound is not used: the delivery asks again."""
    store = Store(offsets=[-1.0, 0.0])
    assert await pacing(store).wait("ep") is True
    assert len(store.requests) == 2


async def test_a_slot_due_within_the_timer_resolution_is_used_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A slot half a millisecond ahead is sent without a timer (a limit far above what is
    sent must not cost a timer per delivery); one ten milliseconds ahead is waited for."""
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(delay: float) -> None:
        slept.append(delay)
        await real_sleep(delay)

    monkeypatch.setattr(asyncio, "sleep", sleep)
    assert await pacing(Store(offsets=[0.0005])).wait("ep") is True
    assert slept == []
    assert await pacing(Store(offsets=[0.01])).wait("ep") is True
    assert len(slept) == 1 and ratelimit.EARLY_SLOT_SECONDS < slept[0] <= 0.01


async def test_a_failed_grant_is_retried() -> None:
    """The store being unavailable delays the delivery; it does not strand it."""
    store = Store(fail=1)
    assert await asyncio.wait_for(pacing(store).wait("ep"), 5) is True
    assert len(store.requests) == 1


async def test_a_stopping_worker_gives_its_waiting_deliveries_back() -> None:
    """Deliveries still waiting for a slot when the worker stops are told to go back."""
    store = Store(fail=100)
    paced = pacing(store)
    waiting = asyncio.create_task(paced.wait("ep"))
    await asyncio.sleep(0.05)
    paced.close()
    assert await asyncio.wait_for(waiting, 1) is False


async def test_a_limited_endpoint_has_an_allowance_of_two_seconds_at_its_rate() -> None:
    """What admission reads: a worker may hold two seconds' worth of the endpoint."""
    assert pacing(Store()).allowances() == {"ep": ratelimit.hold_allowance(100)}
