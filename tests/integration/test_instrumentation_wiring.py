"""The worker and the transport tell the instrumentation seam what happened, as it happened."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

import pytest

from hookline.delivery.worker import Worker
from hookline.domain.breaker import BreakerSettings
from hookline.domain.models import MessageStatus
from hookline.domain.retry import RetrySchedule
from hookline.instrumentation import (
    AttemptFinished,
    AttemptMilestone,
    BreakerClosed,
    BreakerOpened,
    ConnectionOpened,
    DeliveryExhausted,
    EndpointDisabled,
    Event,
    Instrumentation,
)
from hookline.storage.base import Store
from hookline.transport import AsyncioTransport, SsrfPolicy
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.keep_alive import KeepAliveServer, keep_alive_server
from tests.integration.test_worker import (
    FakeTransport,
    _is,
    _one_endpoint,
    config,
    eventually,
    ok,
    status,
)

E = TypeVar("E")

EVERYTHING: frozenset[type[Event]] = frozenset(
    {
        AttemptFinished,
        AttemptMilestone,
        BreakerClosed,
        BreakerOpened,
        ConnectionOpened,
        DeliveryExhausted,
        EndpointDisabled,
    }
)


@dataclass
class Heard:
    events: frozenset[type[Event]] = EVERYTHING
    seen: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.seen.append(event)

    def of(self, kind: type[E]) -> list[E]:
        return [event for event in self.seen if isinstance(event, kind)]


@pytest.fixture
async def heard_worker(store: Store) -> AsyncIterator[tuple[Heard, FakeTransport]]:
    """A worker whose instrumentation records every event, with a scripted transport."""
    heard = Heard()
    transport = FakeTransport()
    worker = Worker(
        store,
        transport,
        config(
            retry_schedule=RetrySchedule((0.01,), jitter=0.0), breaker=BreakerSettings(threshold=2)
        ),
        instrumentation=Instrumentation([heard]),
    )
    task = asyncio.create_task(worker.run())
    yield heard, transport
    worker.stop()
    await asyncio.wait_for(task, 10)


async def test_each_attempt_is_heard_with_what_it_did_to_its_delivery(
    store: Store, heard_worker: tuple[Heard, FakeTransport]
) -> None:
    """A 503 then a 200 are two AttemptFinished events: a retry, then a success."""
    heard, transport = heard_worker
    transport.script["https://rx.example/h"] = [status(503), ok()]
    app_id, ep_id, msg_id = await _one_endpoint(store)
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.SUCCESS))
    attempts = heard.of(AttemptFinished)
    assert [(a.status_code, a.outcome, a.attempt_number) for a in attempts] == [
        (503, "retry", 1),
        (200, "success", 2),
    ]
    assert {(a.app_id, a.msg_id, a.endpoint_id) for a in attempts} == {(app_id, msg_id, ep_id)}


async def test_an_attempt_is_heard_with_its_messages_event_id(
    store: Store, heard_worker: tuple[Heard, FakeTransport]
) -> None:
    """The producer's ``eventId`` travels with each attempt's event, so that operational
    webhooks can carry Svix's ``msgEventId``."""
    heard, transport = heard_worker
    transport.script["https://rx.example/h"] = [ok()]
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app, "https://rx.example/h")
    await store.create_endpoint(ep)
    msg = make_message(app, event_id="order-42")
    await store.publish([msg], utcnow())
    await eventually(lambda: _is(store, msg.id, ep.id, MessageStatus.SUCCESS))
    assert [a.msg_event_id for a in heard.of(AttemptFinished)] == ["order-42"]


async def test_only_the_attempts_operators_are_told_of_are_milestones(
    store: Store, heard_worker: tuple[Heard, FakeTransport]
) -> None:
    """A first-attempt success is no milestone; of a delivery then failing twice on a
    one-retry schedule, only the last failure is (exhausted), with the message's eventId."""
    heard, transport = heard_worker
    transport.script["https://rx.example/h"] = [ok(), status(500)]
    app_id, ep_id, first_id = await _one_endpoint(store)
    await eventually(lambda: _is(store, first_id, ep_id, MessageStatus.SUCCESS))
    app = await store.get_application(app_id)
    assert app is not None
    failing = make_message(app, event_id="order-7")
    await store.publish([failing], utcnow())
    await eventually(lambda: _is(store, failing.id, ep_id, MessageStatus.FAIL))
    assert len(heard.of(AttemptFinished)) == 3
    (milestone,) = heard.of(AttemptMilestone)
    assert (milestone.kind, milestone.msg_id, milestone.msg_event_id, milestone.status_code) == (
        "message.attempt.exhausted",
        failing.id,
        "order-7",
        500,
    )


async def test_an_exhausted_delivery_and_its_breaker_are_heard(
    store: Store, heard_worker: tuple[Heard, FakeTransport]
) -> None:
    """Two failures exhaust a one-retry schedule and open a breaker of threshold 2."""
    heard, transport = heard_worker
    transport.script["https://rx.example/h"] = [status(500)]
    _, ep_id, msg_id = await _one_endpoint(store)
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.FAIL))
    assert [(e.msg_id, e.attempts) for e in heard.of(DeliveryExhausted)] == [(msg_id, 2)]
    assert [(e.endpoint_id, e.failures) for e in heard.of(BreakerOpened)] == [(ep_id, 2)]


async def test_a_gone_endpoint_is_heard_disabled_once_its_record_landed(
    store: Store, heard_worker: tuple[Heard, FakeTransport]
) -> None:
    """410 Gone: EndpointDisabled is emitted after the disable is in the store."""
    heard, transport = heard_worker
    transport.script["https://rx.example/h"] = [status(410)]
    app_id, ep_id, _ = await _one_endpoint(store)
    await eventually(lambda: heard.of(EndpointDisabled))
    (event,) = heard.of(EndpointDisabled)
    assert (event.app_id, event.endpoint_id) == (app_id, ep_id)
    endpoint = await store.get_endpoint(app_id, ep_id)
    assert endpoint is not None and endpoint.disabled


@pytest.fixture
async def server() -> AsyncIterator[KeepAliveServer]:
    async with keep_alive_server() as running:
        yield running


async def test_the_transport_is_heard_opening_a_connection_not_reusing_one(
    server: KeepAliveServer,
) -> None:
    """Three requests over one keep-alive connection are one ConnectionOpened."""
    heard = Heard()
    transport = AsyncioTransport(
        SsrfPolicy(allow_private=True), instrumentation=Instrumentation([heard])
    )
    try:
        for _ in range(3):
            assert (await transport.post(server.url("/echo"), b"{}", {}, 5)).status_code == 200
    finally:
        await transport.close()
    (opened,) = heard.of(ConnectionOpened)
    assert opened.scheme == "http" and opened.duration_s >= 0
