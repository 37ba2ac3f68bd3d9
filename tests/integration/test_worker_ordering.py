"""The worker on an ordered endpoint, on a real store with an in-memory transport."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import orjson

from hookline.delivery.worker import Worker
from hookline.domain.models import MessageStatus
from hookline.domain.policy import EndpointPolicy, OnExhausted, OrderingPolicy
from hookline.storage.base import Store
from hookline.testing import MockRequest, MockTransport, answer
from hookline.transport import HttpResult
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.test_worker import config, eventually


async def test_a_holding_endpoint_stops_at_an_exhausted_delivery_until_it_is_skipped(
    store: Store,
) -> None:
    """With onExhausted hold, a delivery that exhausts its retries is held (pending, no next
    attempt), and the next message is not sent; once an operator skips the held one, it is a
    dead letter and the next goes out."""
    app = make_app()
    await store.create_application(app)
    policy = EndpointPolicy(ordering=OrderingPolicy(OnExhausted.HOLD))
    ep = replace(make_endpoint(app), policy=policy)
    await store.create_endpoint(ep)
    first, second = (make_message(app, payload=orjson.dumps({"n": n})) for n in (1, 2))
    await store.publish([first, second], utcnow())
    sent: list[int] = []

    def handler(request: MockRequest) -> HttpResult:
        n = int(orjson.loads(request.body)["n"])
        sent.append(n)
        return answer(500) if n == 1 else answer(200)

    worker = Worker(store, MockTransport(handler), config())
    task = asyncio.create_task(worker.run())
    try:
        await _hold_then_skip(store, first.id, second.id, ep.id, sent)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


async def _hold_then_skip(
    store: Store, first: str, second: str, endpoint_id: str, sent: list[int]
) -> None:
    async def held() -> bool:
        delivery = await store.get_delivery(first, endpoint_id)
        return delivery is not None and delivery.next_attempt_at is None

    await eventually(held)
    await asyncio.sleep(0.2)  # room for a wrong claim of the second message to show
    assert sent == [1, 1, 1, 1]
    waiting = await store.get_delivery(second, endpoint_id)
    assert waiting is not None and waiting.status is MessageStatus.PENDING
    assert waiting.next_attempt_at is not None
    held_one = await store.get_delivery(first, endpoint_id)
    assert held_one is not None
    assert await store.skip_held(held_one.app_id, first, endpoint_id, utcnow())

    async def second_delivered() -> bool:
        delivery = await store.get_delivery(second, endpoint_id)
        return delivery is not None and delivery.status is MessageStatus.SUCCESS

    await eventually(second_delivered)
    skipped = await store.get_delivery(first, endpoint_id)
    assert skipped is not None and skipped.status is MessageStatus.FAIL
    assert sent == [1, 1, 1, 1, 2]
