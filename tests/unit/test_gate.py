"""The per-endpoint gate: a bound on concurrent attempts, fair to waiters, safe to cancel."""

from __future__ import annotations

import asyncio

from hookline.delivery.gate import Gate


async def test_callers_within_the_limit_enter_without_waiting_and_the_next_waits() -> None:
    """Up to the limit enter at once; one more waits until a holder leaves."""
    gate = Gate(2)
    await gate.enter()
    await gate.enter()
    third = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert not third.done()
    gate.leave()
    await asyncio.wait_for(third, 1)


async def test_waiters_enter_in_arrival_order() -> None:
    """A freed place goes to the longest waiter, one place per leave."""
    gate = Gate(1)
    await gate.enter()
    entered: list[int] = []

    async def wait(n: int) -> None:
        await gate.enter()
        entered.append(n)

    waiters = [asyncio.create_task(wait(n)) for n in range(3)]
    await asyncio.sleep(0)
    for expected in range(3):
        gate.leave()
        await asyncio.sleep(0)
        assert entered == list(range(expected + 1))
    await asyncio.gather(*waiters)


async def test_a_cancelled_waiter_takes_no_place() -> None:
    """Cancelling a waiter leaves the limit intact: the next leave admits the next waiter."""
    gate = Gate(1)
    await gate.enter()
    cancelled = asyncio.create_task(gate.enter())
    behind = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    gate.leave()
    await asyncio.wait_for(behind, 1)
    assert cancelled.cancelled()
    late = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    assert not late.done()
    gate.leave()
    await asyncio.wait_for(late, 1)


async def test_a_place_handed_to_a_waiter_cancelled_in_time_passes_on() -> None:
    """If a waiter is cancelled after being handed a place, the place goes to the next."""
    gate = Gate(1)
    await gate.enter()
    first = asyncio.create_task(gate.enter())
    second = asyncio.create_task(gate.enter())
    await asyncio.sleep(0)
    gate.leave()
    first.cancel()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()
