"""Rate limits in the worker, on each store: a limited endpoint is sent at its rate, its
waiting deliveries are neither attempted nor failed, an unlimited neighbour is not slowed, and
a receiver's 429 with ``Retry-After`` slows its endpoint for every worker."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace

from hookline.domain.breaker import BreakerSettings
from hookline.domain.models import Application, Endpoint, MessageStatus
from hookline.domain.ratelimit import MIN_RATE
from hookline.storage.base import AttemptFilter, ListQuery, Store
from hookline.testing import MockRequest
from hookline.transport import HttpResult
from tests.conftest import make_app, make_endpoint, make_message, utcnow
from tests.integration.test_worker import FakeTransport, Running, config, eventually, ok, status
from tests.integration.test_worker import running as running  # the fixture, used by name


@dataclass
class TimedTransport(FakeTransport):
    """Records when each URL was sent to."""

    sent_at: dict[str, list[float]] = field(default_factory=dict)

    async def _answer(self, request: MockRequest) -> HttpResult:
        self.sent_at.setdefault(request.url, []).append(time.monotonic())
        return await super()._answer(request)


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window starting at a send."""
    return max(sum(1 for t in times if start <= t < start + 1.0) for start in times)


async def _limited(
    store: Store, count: int, *, endpoint_rate: int | None, app_rate: int | None = None
) -> tuple[Application, Endpoint, Endpoint]:
    """An application (at ``app_rate``) with a limited endpoint and an unlimited one, and
    ``count`` messages published to both."""
    app = replace(make_app(), throttle_rate=app_rate)
    await store.create_application(app)
    limited = replace(make_endpoint(app, "https://rx.example/limited"), throttle_rate=endpoint_rate)
    free = make_endpoint(app, "https://rx.example/free")
    await store.create_endpoint(limited)
    await store.create_endpoint(free)
    await store.publish([make_message(app) for _ in range(count)], utcnow())
    return app, limited, free


async def test_a_limited_endpoint_is_sent_at_its_rate_and_its_neighbour_at_full_speed(
    store: Store, running: Running
) -> None:
    """30 messages at 20/s take about 1.5 s, never more than 20 in a second, each attempted
    once and successful; the unlimited endpoint beside it has them all long before."""
    app, limited, _ = await _limited(store, 30, endpoint_rate=20)
    transport = TimedTransport()
    started = time.monotonic()
    running(transport, config(max_in_flight=64))
    await eventually(lambda: len(transport.sent_at.get(limited.url, [])) == 30, timeout=10)
    times = transport.sent_at[limited.url]
    assert times[-1] - times[0] >= 29 / 20 * 0.9
    assert busiest_second(times) <= 21
    assert max(transport.sent_at["https://rx.example/free"]) - started < times[-1] - started

    async def attempts_of_limited() -> list[MessageStatus]:
        page = await store.list_attempts(app.id, ListQuery(limit=250), AttemptFilter(), None)
        return [a.status for a in page.data if a.endpoint_id == limited.id]

    await eventually(lambda: _has_count(attempts_of_limited(), 30))
    assert set(await attempts_of_limited()) == {MessageStatus.SUCCESS}


async def _has_count(found: Awaitable[list[MessageStatus]], count: int) -> bool:
    return len(await found) >= count


async def test_the_application_limit_applies_where_the_endpoint_sets_none(
    store: Store, running: Running
) -> None:
    """An application at 10/s paces its endpoint without a limit of its own at 10/s, and its
    endpoint with its own limit (30/s, higher) at that one."""
    _, limited, free = await _limited(store, 12, endpoint_rate=30, app_rate=10)
    transport = TimedTransport()
    running(transport, config(max_in_flight=64))
    await eventually(lambda: len(transport.sent_at.get(free.url, [])) == 12, timeout=10)
    by_app, by_endpoint = transport.sent_at[free.url], transport.sent_at[limited.url]
    assert by_app[-1] - by_app[0] >= 11 / 10 * 0.9
    assert by_endpoint[-1] - by_endpoint[0] >= 11 / 30 * 0.9
    assert by_endpoint[-1] < by_app[-1] - 0.5


async def test_two_workers_share_one_endpoints_rate(store: Store, running: Running) -> None:
    """Two workers on one store send a 20/s endpoint at 20/s between them, not 40."""
    _, limited, _ = await _limited(store, 40, endpoint_rate=20)
    transport = TimedTransport()
    running(transport, config(max_in_flight=64))
    running(transport, config(max_in_flight=64))
    await eventually(lambda: len(transport.sent_at.get(limited.url, [])) == 40, timeout=10)
    times = sorted(transport.sent_at[limited.url])
    assert times[-1] - times[0] >= 39 / 20 * 0.9
    assert busiest_second(times) <= 21


async def test_a_429_with_retry_after_slows_its_endpoint_for_every_worker(
    store: Store, running: Running
) -> None:
    """A 429 with ``Retry-After`` from a 40/s endpoint halves its rate, recorded in the store
    for the other workers; the delivery itself is retried and succeeds."""
    _, limited, _ = await _limited(store, 1, endpoint_rate=40)
    transport = TimedTransport(script={limited.url: [status(429, "0"), ok()]})
    running(transport, config())
    await eventually(lambda: len(transport.sent_at.get(limited.url, [])) == 2)
    slowed = await store.slowed_endpoints(utcnow())
    assert slowed[limited.id].rate == 20.0


async def test_an_unlimited_endpoint_answering_429_is_slowed_down_too(
    store: Store, running: Running
) -> None:
    """Without a limit, an endpoint answering 429 with ``Retry-After`` is paced at a rate
    estimated from what was under way, never below the minimum."""
    _, _, free = await _limited(store, 1, endpoint_rate=None)
    transport = TimedTransport(script={free.url: [status(429, "0"), ok()]})
    running(transport, config())
    await eventually(lambda: len(transport.sent_at.get(free.url, [])) == 2)
    slowed = await store.slowed_endpoints(utcnow())
    assert slowed[free.id].rate >= MIN_RATE


async def test_a_paced_endpoints_breaker_still_probes_and_closes(
    store: Store, running: Running
) -> None:
    """A limited endpoint that fails until its breaker opens gets its half-open probe, with
    a send slot, and once it answers again every message is delivered."""
    _, limited, _ = await _limited(store, 6, endpoint_rate=50)
    transport = TimedTransport(script={limited.url: [status(503)] * 3 + [ok()]})
    running(transport, config(breaker=BreakerSettings(threshold=2, cooldown=0.2)))
    await eventually(lambda: len(transport.sent_at.get(limited.url, [])) >= 9, timeout=10)
