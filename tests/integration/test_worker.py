"""The delivery worker on a real SQLite store with an in-memory transport."""

from __future__ import annotations

import asyncio
import base64
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from standardwebhooks import Webhook, WebhookVerificationError
from svix import webhooks as svix_webhooks

from hookline.delivery import recorder as recorder_module
from hookline.delivery.worker import Worker, WorkerConfig
from hookline.domain.breaker import BreakerSettings
from hookline.domain.models import Application, Attempt, Endpoint, MessageStatus, SigningKey
from hookline.domain.policy import (
    ApplicationPolicy,
    EndpointPolicy,
    FallbackPolicy,
    RetryPolicy,
)
from hookline.domain.retry import RetrySchedule
from hookline.domain.signing import HeaderStyle, generate_ed25519_secret, public_key
from hookline.storage.base import AttemptFilter, ListQuery, Store
from hookline.testing import MockRequest, MockTransport
from hookline.transport import HttpResult
from tests.conftest import make_app, make_endpoint, make_message, utcnow


@dataclass
class FakeTransport(MockTransport):
    """``hookline.testing.MockTransport`` with a scripted receiver: answers from a script per
    URL (the last answer repeats), records every request, and can hold requests at a gate."""

    script: dict[str, list[HttpResult]] = field(default_factory=dict)
    calls: list[MockRequest] = field(default_factory=list)
    gate: asyncio.Event | None = None
    gated_urls: frozenset[str] | None = None
    """When set, only these URLs wait on ``gate``."""
    delay: float = 0.0
    active: int = 0
    peak: int = 0

    def __post_init__(self) -> None:
        super().__init__(self._answer)

    async def _answer(self, request: MockRequest) -> HttpResult:
        self.calls.append(request)
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            if self.gate is not None and (
                self.gated_urls is None or request.url in self.gated_urls
            ):
                await self.gate.wait()
            if self.delay:
                await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        answers = self.script.get(request.url)
        if answers:
            return answers.pop(0) if len(answers) > 1 else answers[0]
        return ok()


def ok() -> HttpResult:
    return HttpResult(200, b"ok", None, 1, None)


def status(code: int, retry_after: str | None = None) -> HttpResult:
    return HttpResult(code, b"nope", None, 1, retry_after)


async def eventually(check: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until an async or sync condition holds, failing at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


def config(**changes: object) -> WorkerConfig:
    base = WorkerConfig(
        retry_schedule=RetrySchedule((0.01, 0.01, 0.01), jitter=0.0),
        request_timeout=1.0,
        lease_seconds=5.0,
        poll_interval=0.01,
        max_in_flight=16,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


Running = Callable[[FakeTransport, WorkerConfig], Worker]
"""Starts a worker on the test's store; the fixture stops it after the test."""


@pytest.fixture
async def running(store: Store) -> AsyncIterator[Running]:
    started: list[tuple[Worker, asyncio.Task[None]]] = []

    def start(transport: FakeTransport, cfg: WorkerConfig) -> Worker:
        worker = Worker(store, transport, cfg)
        started.append((worker, asyncio.create_task(worker.run())))
        return worker

    yield start
    for worker, task in started:
        worker.stop()
        await asyncio.wait_for(task, 10)


async def _one_endpoint(store: Store, url: str = "https://rx.example/h") -> tuple[str, str, str]:
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app, url)
    await store.create_endpoint(ep)
    msg = make_message(app, payload=b'{"hello":"world"}')
    await store.publish([msg], utcnow())
    return app.id, ep.id, msg.id


def count_claimed_rows(store: Store) -> Callable[[], int]:
    """Count the rows every claim on ``store`` returns from now on."""
    rows: list[int] = []
    claim_due = store.claim_due

    async def counting_claim(*args: Any, **kwargs: Any) -> Any:
        found = await claim_due(*args, **kwargs)
        rows.append(len(found))
        return found

    store.claim_due = counting_claim  # type: ignore[method-assign]
    return lambda: sum(rows)


async def _status(store: Store, msg_id: str, ep_id: str) -> MessageStatus | None:
    delivery = await store.get_delivery(msg_id, ep_id)
    return None if delivery is None else delivery.status


async def test_success_is_signed_verifiable_and_recorded(store: Store, running: Running) -> None:
    """A delivery carries Standard Webhooks headers that the public verifier accepts."""
    app_id, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport()
    running(transport, config())
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.SUCCESS))
    (call,) = transport.calls
    endpoint = await store.get_endpoint(app_id, ep_id)
    assert endpoint is not None
    Webhook(endpoint.current_key.secret).verify(call.body, dict(call.headers))
    assert call.headers["webhook-id"] == msg_id and call.body == b'{"hello":"world"}'
    attempts = await store.list_attempts(app_id, ListQuery(), AttemptFilter(), msg_id)
    assert [(a.response_status_code, a.status) for a in attempts.data] == [
        (200, MessageStatus.SUCCESS)
    ]


@pytest.mark.parametrize(
    ("style", "sent", "absent"),
    [
        (HeaderStyle.SVIX, {"svix-id", "svix-timestamp", "svix-signature"}, "webhook-id"),
        (
            HeaderStyle.BOTH,
            {"svix-id", "svix-signature", "webhook-id", "webhook-signature"},
            None,
        ),
    ],
)
async def test_svix_style_signature_headers_verify_with_the_svix_library(
    store: Store,
    running: Running,
    style: HeaderStyle,
    sent: set[str],
    absent: str | None,
) -> None:
    """With ``svix`` or ``both`` names, Svix's own verifier accepts the request as sent."""
    app_id, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport()
    running(transport, config(signature_headers=style))
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.SUCCESS))
    (call,) = transport.calls
    endpoint = await store.get_endpoint(app_id, ep_id)
    assert endpoint is not None
    assert sent <= set(call.headers) and call.headers["svix-id"] == msg_id
    assert absent is None or absent not in call.headers
    svix_webhooks.Webhook(endpoint.current_key.secret).verify(call.body, dict(call.headers))
    if style is HeaderStyle.BOTH:
        only_standard = {k: v for k, v in call.headers.items() if not k.startswith("svix-")}
        Webhook(endpoint.current_key.secret).verify(call.body, only_standard)


async def _is(store: Store, msg_id: str, ep_id: str, wanted: MessageStatus) -> bool:
    return await _status(store, msg_id, ep_id) is wanted


async def test_failures_retry_then_succeed(store: Store, running: Running) -> None:
    """Two 503s then a 200 give three attempts and a successful delivery."""
    app_id, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport({"https://rx.example/h": [status(503), status(503), ok()]})
    running(transport, config())
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.SUCCESS))
    attempts = await store.list_attempts(app_id, ListQuery(), AttemptFilter(), msg_id)
    assert sorted(a.response_status_code for a in attempts.data) == [200, 503, 503]
    assert len({c.headers["webhook-id"] for c in transport.calls}) == 1


async def test_exhausted_schedule_fails_the_delivery(store: Store, running: Running) -> None:
    """After the schedule's last retry fails, the delivery is failed and not tried again."""
    _, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport({"https://rx.example/h": [status(500)]})
    running(transport, config())
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.FAIL))
    assert len(transport.calls) == 4
    assert await store.claim_due(10, utcnow(), utcnow(), "w1") == []


async def test_gone_disables_the_endpoint(store: Store, running: Running) -> None:
    """A 410 answer fails the delivery and disables the endpoint."""
    app_id, ep_id, msg_id = await _one_endpoint(store)
    running(FakeTransport({"https://rx.example/h": [status(410)]}), config())
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.FAIL))
    endpoint = await store.get_endpoint(app_id, ep_id)
    assert endpoint is not None and endpoint.disabled


async def test_network_error_is_recorded_with_status_zero(store: Store, running: Running) -> None:
    """An attempt without an HTTP response logs status 0 and the reason as its response."""
    app_id, ep_id, msg_id = await _one_endpoint(store)
    refused = HttpResult(0, b"", "connection refused", 2, None)
    running(FakeTransport({"https://rx.example/h": [refused, ok()]}), config())
    await eventually(lambda: _is(store, msg_id, ep_id, MessageStatus.SUCCESS))
    attempts = await store.list_attempts(app_id, ListQuery(), AttemptFilter(), msg_id)
    first = min(attempts.data, key=lambda a: a.id)
    assert (first.response_status_code, first.response) == (0, "connection refused")


async def test_stop_finishes_in_flight_attempts(store: Store) -> None:
    """Stopping waits for the attempt in flight and records it before returning."""
    _, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport(gate=asyncio.Event())
    worker = Worker(store, transport, config())
    task = asyncio.create_task(worker.run())
    await eventually(lambda: len(transport.calls) == 1)
    worker.stop()
    await asyncio.sleep(0)
    assert not task.done()
    assert transport.gate is not None
    assert transport.gate is not None
    transport.gate.set()
    await asyncio.wait_for(task, 5)
    assert await _status(store, msg_id, ep_id) is MessageStatus.SUCCESS


async def test_stop_gives_up_results_a_failing_store_keeps_refusing(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A store that refuses every attempt result cannot hold a stopping worker forever: after
    the grace period it stops, says how many results it gave up, and their deliveries stay
    leased, so they go out again once the lease runs out."""
    monkeypatch.setattr(recorder_module, "SHUTDOWN_GRACE_SECONDS", 0.3)
    monkeypatch.setattr(recorder_module, "STORE_RETRY_SECONDS", 0.05)
    _, ep_id, msg_id = await _one_endpoint(store)
    transport = FakeTransport()

    async def refuse(outcomes: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(store, "complete", refuse)
    worker = Worker(store, transport, config())
    task = asyncio.create_task(worker.run())
    await eventually(lambda: len(transport.calls) == 1)
    await eventually(lambda: "recording 1 attempts failed" in caplog.text)
    worker.stop()
    await asyncio.wait_for(task, 3)
    assert "stopping with 1 attempt results unwritten" in caplog.text
    assert await _status(store, msg_id, ep_id) is MessageStatus.SENDING


async def test_in_flight_cap_is_respected(store: Store, running: Running) -> None:
    """No more than max_in_flight attempts run at once."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app))
    await store.publish([make_message(app) for _ in range(20)], utcnow())
    transport = FakeTransport(delay=0.005)
    running(transport, config(max_in_flight=3))
    await eventually(lambda: len(transport.calls) == 20)
    assert transport.peak == 3


async def test_ed25519_endpoint_gets_a_v1a_signature(store: Store, running: Running) -> None:
    """An endpoint with a whsk_ secret receives a v1a signature its whpk_ key verifies."""
    app = make_app()
    await store.create_application(app)
    secret = generate_ed25519_secret()
    ep = replace(make_endpoint(app), keys=(SigningKey(secret),))
    await store.create_endpoint(ep)
    msg = make_message(app)
    await store.publish([msg], utcnow())
    transport = FakeTransport()
    running(transport, config())
    await eventually(lambda: _is(store, msg.id, ep.id, MessageStatus.SUCCESS))
    (call,) = transport.calls
    scheme, _, signature = call.headers["webhook-signature"].partition(",")
    assert scheme == "v1a"
    public = base64.b64decode(public_key(secret).removeprefix("whpk_"))
    content = f"{msg.id}.{call.headers['webhook-timestamp']}.".encode() + call.body
    Ed25519PublicKey.from_public_bytes(public).verify(base64.b64decode(signature), content)


async def test_a_stuck_endpoint_gets_its_cap_and_others_keep_flowing(
    store: Store, running: Running
) -> None:
    """An endpoint that never answers holds at most its cap; another endpoint is unaffected."""
    app = make_app()
    await store.create_application(app)
    stuck = make_endpoint(app, "https://stuck.example/h")
    healthy = make_endpoint(app, "https://healthy.example/h")
    await store.create_endpoint(stuck)
    await store.create_endpoint(healthy)
    await store.publish([make_message(app) for _ in range(40)], utcnow())
    transport = FakeTransport(gate=asyncio.Event(), gated_urls=frozenset({stuck.url}))
    running(transport, config(max_in_flight=16, endpoint_max_in_flight=3))
    await eventually(lambda: _count(store, app.id, healthy.id, MessageStatus.SUCCESS, 40))
    sent_to_stuck = [c for c in transport.calls if c.url == stuck.url]
    assert len(sent_to_stuck) == 3
    assert transport.gate is not None
    assert transport.gate is not None
    transport.gate.set()
    await eventually(lambda: _count(store, app.id, stuck.id, MessageStatus.SUCCESS, 40))


async def _count(
    store: Store, app_id: str, endpoint_id: str, status: MessageStatus, wanted: int
) -> bool:
    stats = await store.endpoint_stats(app_id, endpoint_id)
    return bool(getattr(stats, status.text) == wanted)


async def test_publish_hands_work_to_the_local_worker_without_a_claim(
    store: Store, running: Running
) -> None:
    """With the worker attached to the store, a publish's deliveries reach the transport and
    are recorded, signed as usual, without a single claimed row; what exceeds the worker's
    free slots is left pending and claimed as slots free up."""
    claimed = count_claimed_rows(store)
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app, "https://rx.example/h")
    await store.create_endpoint(ep)
    transport = FakeTransport(gate=asyncio.Event())
    worker = running(transport, config(max_in_flight=4))
    store.attach_handoff(worker)
    first = make_message(app, payload=b'{"n":1}')
    await store.publish([first], utcnow())
    await eventually(lambda: len(transport.calls) == 1)
    assert claimed() == 0
    Webhook(ep.current_key.secret).verify(transport.calls[0].body, dict(transport.calls[0].headers))
    more = [make_message(app) for _ in range(9)]
    await store.publish(more, utcnow())
    await eventually(lambda: len(transport.calls) == 4)
    assert claimed() == 0
    assert transport.gate is not None
    transport.gate.set()
    for msg in [first, *more]:
        await eventually(partial(_is, store, msg.id, ep.id, MessageStatus.SUCCESS))
    assert claimed() == 6


async def test_a_burst_to_one_endpoint_is_handed_over_beyond_its_cap_and_sent_within_it(
    store: Store, running: Running
) -> None:
    """A publish hands the local worker up to twice an endpoint's in-flight cap: the
    deliveries beyond the cap wait at its gate instead of being written pending and claimed
    back; no more than the cap are ever sent at once, and the rest of the burst is left
    pending for a claim."""
    claimed = count_claimed_rows(store)
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app, "https://rx.example/h")
    await store.create_endpoint(ep)
    transport = FakeTransport(gate=asyncio.Event())
    worker = running(transport, config(max_in_flight=16, endpoint_max_in_flight=3))
    store.attach_handoff(worker)
    burst = [make_message(app) for _ in range(10)]
    await store.publish(burst, utcnow())
    await eventually(lambda: len(transport.calls) == 3)
    delivered = [await store.get_delivery(m.id, ep.id) for m in burst]
    statuses = Counter(d.status for d in delivered if d is not None)
    assert statuses == {MessageStatus.SENDING: 6, MessageStatus.PENDING: 4}
    assert claimed() == 0
    assert transport.gate is not None
    transport.gate.set()
    for msg in burst:
        await eventually(partial(_is, store, msg.id, ep.id, MessageStatus.SUCCESS))
    assert transport.peak == 3
    assert claimed() == 4


async def test_a_dead_endpoint_trips_its_breaker_and_stops_costing_attempts(
    store: Store, running: Running
) -> None:
    """After 3 failures in a row the breaker opens: the dead endpoint's other deliveries are
    held without attempts while a healthy endpoint keeps flowing; once it answers again, a
    probe closes the breaker and everything held is delivered, with no attempt spent on it
    while it was open."""
    app = make_app()
    await store.create_application(app)
    dead = make_endpoint(app, "https://dead.example/h")
    healthy = make_endpoint(app, "https://ok.example/h")
    for ep in (dead, healthy):
        await store.create_endpoint(ep)
    transport = FakeTransport(script={dead.url: [status(0)]})
    cfg = config(
        retry_schedule=RetrySchedule((0.05,) * 9, jitter=0.0),
        breaker=BreakerSettings(threshold=3, cooldown=1.0),
    )
    worker = running(transport, cfg)
    store.attach_handoff(worker)
    messages = [make_message(app) for _ in range(20)]
    await store.publish(messages, utcnow())
    for msg in messages:
        await eventually(partial(_is, store, msg.id, healthy.id, MessageStatus.SUCCESS))
    await asyncio.sleep(0.3)
    failed_calls = sum(c.url == dead.url for c in transport.calls)
    assert failed_calls == 3, "one attempt per failure up to the threshold, then none"
    transport.script[dead.url] = [ok()]
    for msg in messages:
        await eventually(partial(_is, store, msg.id, dead.id, MessageStatus.SUCCESS))
    assert sum(c.url == dead.url for c in transport.calls) == failed_calls + 20
    page = await store.list_attempts(app.id, ListQuery(limit=250), AttemptFilter(), None)
    codes = Counter(a.response_status_code for a in page.data if a.endpoint_id == dead.id)
    assert codes == {0: 3, 200: 20}


async def test_a_circuit_one_worker_opened_holds_the_endpoint_on_another(
    store: Store, running: Running
) -> None:
    """A breaker the first worker opened is written to the store; a second worker, which never
    sent to that endpoint, learns it on its first heartbeat and claims none of its deliveries
    while it holds, though the same messages' deliveries to a healthy endpoint go out."""
    app = make_app()
    await store.create_application(app)
    dead = make_endpoint(app, "https://dead.example/h")
    healthy = make_endpoint(app, "https://ok.example/h")
    for ep in (dead, healthy):
        await store.create_endpoint(ep)
    cfg = config(breaker=BreakerSettings(threshold=1, cooldown=60.0))
    first = Worker(store, FakeTransport(script={dead.url: [status(0)]}), cfg)
    first_run = asyncio.create_task(first.run())
    messages = [make_message(app)]
    await store.publish(messages, utcnow())

    async def dead_is_open() -> bool:
        return dead.id in await store.open_circuits(utcnow())

    await eventually(dead_is_open)
    first.stop()
    await asyncio.wait_for(first_run, 5)
    messages.append(make_message(app))
    await store.publish(messages[1:], utcnow())
    transport = FakeTransport()
    running(transport, cfg)
    await eventually(lambda: _count(store, app.id, healthy.id, MessageStatus.SUCCESS, 2))
    assert [c.url for c in transport.calls] == [healthy.url]
    for msg in messages:
        assert await _status(store, msg.id, dead.id) is MessageStatus.PENDING


async def test_failing_periods_are_written_on_transitions_not_per_attempt(
    store: Store, running: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fifteen failed attempts of three deliveries start the endpoint's failing period with
    one write; the success that follows ends it with one more."""
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app, "https://rx.example/flaky")
    await store.create_endpoint(ep)
    writes: list[tuple[str, list[str]]] = []
    for name in ("mark_endpoints_failing", "mark_endpoints_healthy"):
        original = getattr(store, name)

        def counting(*args: Any, _name: str = name, _original: Any = original) -> Any:
            writes.append((_name, list(args[0])))
            return _original(*args)

        monkeypatch.setattr(store, name, counting)
    transport = FakeTransport(script={ep.url: [status(503)]})
    schedule = RetrySchedule((0.01,) * 4, jitter=0.0)
    running(transport, config(retry_schedule=schedule, breaker=BreakerSettings(threshold=100)))
    await store.publish([make_message(app) for _ in range(3)], utcnow())
    await eventually(lambda: len(transport.calls) == 15)

    async def failing_since() -> object:
        found = await store.get_endpoint(app.id, ep.id)
        return found is not None and found.failing_since

    await eventually(failing_since)
    transport.script[ep.url] = [ok()]
    await store.publish([make_message(app)], utcnow())

    async def healthy() -> bool:
        found = await store.get_endpoint(app.id, ep.id)
        return found is not None and found.failing_since is None

    # The write is counted as it starts: wait for its commit before reading the writes.
    await eventually(healthy)
    assert writes == [("mark_endpoints_failing", [ep.id]), ("mark_endpoints_healthy", [ep.id])]


async def test_a_retry_the_worker_scheduled_goes_out_when_due_not_at_the_next_poll(
    store: Store, running: Running
) -> None:
    """The idle wait ends when a retry this worker scheduled falls due: with a 5 s poll
    interval, a retry 0.1 s after a failure is sent well within a second."""
    _, _, _ = await _one_endpoint(store)
    transport = FakeTransport(script={"https://rx.example/h": [status(500), ok()]})
    retries = RetrySchedule((0.1,), jitter=0.0)
    running(transport, config(retry_schedule=retries, poll_interval=5.0))
    await eventually(lambda: len(transport.calls) == 2, timeout=3.0)


async def test_the_endpoint_retry_policy_wins_over_its_application_over_the_server(
    store: Store, running: Running
) -> None:
    """A failing endpoint with its own schedule is tried as it says; a sibling without one
    as its application says; neither as the server's schedule (one attempt) says."""
    app = replace(make_app(), policy=ApplicationPolicy(RetryPolicy((0.01,) * 3)))
    await store.create_application(app)
    own = make_endpoint(app, "https://rx.example/own")
    own = replace(own, policy=EndpointPolicy(retry=RetryPolicy((0.01,))))
    inherits = make_endpoint(app, "https://rx.example/inherits")
    for ep in (own, inherits):
        await store.create_endpoint(ep)
    msg = make_message(app)
    await store.publish([msg], utcnow())
    transport = FakeTransport(script={ep.url: [status(500)] for ep in (own, inherits)})
    running(transport, config(retry_schedule=RetrySchedule(())))

    async def exhausted() -> bool:
        found = [await store.get_delivery(msg.id, ep.id) for ep in (own, inherits)]
        return all(d is not None and d.status is MessageStatus.FAIL for d in found)

    await eventually(exhausted)
    assert Counter(c.url for c in transport.calls) == {own.url: 2, inherits.url: 4}


async def test_a_scheduled_delivery_goes_out_at_its_time_when_the_worker_is_told(
    store: Store, running: Running
) -> None:
    """Told when a publish's scheduled deliveries fall due (``wake_at``, as ``serve`` wires
    it), a worker with a 5 s poll interval sends one at its deliverAt, not before, and not
    at its next poll."""
    app = make_app()
    await store.create_application(app)
    await store.create_endpoint(make_endpoint(app, "https://rx.example/later"))
    transport = FakeTransport()
    worker = running(transport, config(poll_interval=5.0))
    soon = utcnow() + timedelta(seconds=0.3)
    when = soon.replace(microsecond=soon.microsecond // 1000 * 1000)  # as stored
    msg = replace(make_message(app), deliver_at=when)
    await store.publish([msg], utcnow())
    worker.wake_at(when)

    async def attempted() -> list[Attempt]:
        return (await store.list_attempts(app.id, ListQuery(), AttemptFilter(), msg.id)).data

    await eventually(attempted, timeout=2.0)
    (attempt,) = await attempted()
    assert when <= attempt.timestamp < when + timedelta(seconds=1)


async def test_one_probe_serves_every_worker_and_its_success_resumes_them_all(
    store: Store,
) -> None:
    """Two workers share a dead endpoint's circuit: after the cooldown exactly one probe goes
    out across both (the other holds while it is out), and when it succeeds both workers
    deliver the endpoint's held deliveries again."""
    app = make_app()
    await store.create_application(app)
    dead = make_endpoint(app, "https://dead.example/h")
    await store.create_endpoint(dead)
    script = {dead.url: [status(0)]}
    gate = asyncio.Event()
    transports = [FakeTransport(script=script, gate=gate, gated_urls=frozenset()) for _ in range(2)]
    cfg = config(
        breaker=BreakerSettings(threshold=2, cooldown=0.5),
        heartbeat_interval=0.1,
        endpoint_max_in_flight=2,
        retry_schedule=RetrySchedule((0.05,) * 20, jitter=0.0),
    )
    workers = [Worker(store, transport, cfg) for transport in transports]
    tasks = [asyncio.create_task(worker.run()) for worker in workers]
    try:
        messages = [make_message(app) for _ in range(30)]
        await store.publish(messages, utcnow())

        async def dead_is_open() -> bool:
            return dead.id in await store.open_circuits(utcnow())

        await eventually(dead_is_open)
        for transport in transports:
            transport.gated_urls = frozenset({dead.url})
        script[dead.url] = [ok()]
        before = [len(t.calls) for t in transports]
        await eventually(lambda: sum(t.active for t in transports) == 1)
        await asyncio.sleep(0.5)  # five heartbeats and a cooldown: time for a second probe
        assert sum(t.active for t in transports) == 1, "one probe across both workers"
        assert sum(len(t.calls) for t in transports) == sum(before) + 1
        for transport in transports:
            transport.delay = 0.02
        gate.set()
        for msg in messages:
            await eventually(partial(_is, store, msg.id, dead.id, MessageStatus.SUCCESS), 15)
        after = [len(t.calls) - n for t, n in zip(transports, before, strict=True)]
        assert all(sent > 1 for sent in after), f"both workers resumed: {after}"
        assert dead.id not in await store.open_circuits(utcnow())
    finally:
        for worker in workers:
            worker.stop()
        await asyncio.gather(*(asyncio.wait_for(task, 10) for task in tasks))


async def _with_fallback(
    store: Store, after_open_seconds: float | None = None
) -> tuple[Endpoint, Endpoint, Application]:
    """A primary endpoint whose policy names a fallback destination (subscribed to another
    event type, so it receives only what stands in for the primary)."""
    app = make_app()
    await store.create_application(app)
    backup = replace(make_endpoint(app, "https://backup.example/h"), event_types=("x.other",))
    policy = EndpointPolicy(fallback=FallbackPolicy(backup.id, after_open_seconds))
    primary = replace(make_endpoint(app, "https://primary.example/h"), policy=policy)
    await store.create_endpoint(backup)
    await store.create_endpoint(primary)
    return primary, backup, app


async def test_what_the_primary_exhausted_goes_to_its_fallback_signed_with_its_secret(
    store: Store, running: Running
) -> None:
    """A delivery the primary exhausted is delivered to the fallback destination, signed with
    the fallback's own secret; the attempt log shows the fallback's attempt standing in for
    the primary, and a fallback's own exhaustion goes no further."""
    primary, backup, app = await _with_fallback(store)
    transport = FakeTransport(script={primary.url: [status(500)], backup.url: [ok()]})
    running(transport, config(retry_schedule=RetrySchedule((0.01,), jitter=0.0)))
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await eventually(partial(_is, store, msg.id, backup.id, MessageStatus.SUCCESS))
    assert await _status(store, msg.id, primary.id) is MessageStatus.FAIL
    (call,) = [c for c in transport.calls if c.url == backup.url]
    Webhook(backup.current_key.secret).verify(call.body, dict(call.headers))
    with pytest.raises(WebhookVerificationError):
        Webhook(primary.current_key.secret).verify(call.body, dict(call.headers))
    attempts = await store.list_attempts(app.id, ListQuery(), AttemptFilter(), msg.id)
    logged = sorted((a.endpoint_id, a.response_status_code, a.fallback_for) for a in attempts.data)
    assert logged == sorted(
        [(primary.id, 500, None), (primary.id, 500, None), (backup.id, 200, primary.id)]
    )


async def test_a_fallback_exhausted_in_turn_does_not_chain_further(
    store: Store, running: Running
) -> None:
    """The fallback destination names a fallback of its own; what it exhausts while standing
    in for the primary stays failed there and goes nowhere else."""
    primary, backup, app = await _with_fallback(store)
    third = replace(make_endpoint(app, "https://third.example/h"), event_types=("x.other",))
    await store.create_endpoint(third)
    chained = replace(backup, policy=EndpointPolicy(fallback=FallbackPolicy(third.id)))
    assert await store.update_endpoint(chained) is not None
    transport = FakeTransport(script={primary.url: [status(500)], backup.url: [status(500)]})
    running(transport, config(retry_schedule=RetrySchedule((), jitter=0.0)))
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await eventually(partial(_is, store, msg.id, backup.id, MessageStatus.FAIL))
    await asyncio.sleep(0.2)  # a few polls: time for a (wrong) third delivery to appear
    assert await store.get_delivery(msg.id, third.id) is None
    assert third.url not in {c.url for c in transport.calls}


async def test_what_waits_behind_a_circuit_open_too_long_is_diverted_to_the_fallback(
    store: Store, running: Running
) -> None:
    """While the primary's circuit has been open less than afterOpenSeconds its deliveries
    are held; after that, held deliveries go to the fallback destination instead (the
    primary's fail unattempted), and the fallback's attempts name the primary."""
    primary, backup, app = await _with_fallback(store, after_open_seconds=0.5)
    transport = FakeTransport(script={primary.url: [status(0)], backup.url: [ok()]})
    cfg = config(
        breaker=BreakerSettings(threshold=1, cooldown=60.0),
        retry_schedule=RetrySchedule((0.05,) * 5, jitter=0.0),
    )
    running(transport, cfg)
    first = make_message(app)
    await store.publish([first], utcnow())

    async def primary_is_open() -> bool:
        return primary.id in await store.open_circuits(utcnow())

    await eventually(primary_is_open)
    held = [make_message(app) for _ in range(5)]
    await store.publish(held, utcnow())
    for msg in [first, *held]:
        await eventually(partial(_is, store, msg.id, backup.id, MessageStatus.SUCCESS), 10)
        assert await _status(store, msg.id, primary.id) is MessageStatus.FAIL
    assert sum(c.url == primary.url for c in transport.calls) == 1, "no attempt while open"
    attempts = await store.list_attempts(app.id, ListQuery(limit=50), AttemptFilter(), None)
    assert {a.fallback_for for a in attempts.data if a.endpoint_id == backup.id} == {primary.id}


async def test_a_delivery_failed_by_410_gone_goes_to_the_fallback(
    store: Store, running: Running
) -> None:
    """410 Gone fails the delivery and disables the primary; its fallback receives it."""
    primary, backup, app = await _with_fallback(store)
    transport = FakeTransport(script={primary.url: [status(410)], backup.url: [ok()]})
    running(transport, config())
    msg = make_message(app)
    await store.publish([msg], utcnow())
    await eventually(partial(_is, store, msg.id, backup.id, MessageStatus.SUCCESS))
    disabled = await store.get_endpoint(app.id, primary.id)
    assert disabled is not None and disabled.disabled


async def test_429_with_retry_after_reschedules_without_opening_the_breaker(
    store: Store, running: Running
) -> None:
    """An endpoint that asks to slow down (429 with Retry-After) on more attempts than the
    threshold keeps its circuit closed: each delivery is rescheduled, and all are delivered
    once it answers 200; the same answers without Retry-After open it."""
    app = make_app()
    await store.create_application(app)
    slow = make_endpoint(app, "https://slow.example/h")
    plain = make_endpoint(app, "https://plain.example/h")
    for ep in (slow, plain):
        await store.create_endpoint(ep)
    script = {slow.url: [status(429, "0")] * 6 + [ok()], plain.url: [status(429)]}
    transport = FakeTransport(script=script)
    running(transport, config(breaker=BreakerSettings(threshold=2, cooldown=60.0)))
    messages = [make_message(app) for _ in range(3)]
    await store.publish(messages, utcnow())

    async def plain_is_open() -> bool:
        return plain.id in await store.open_circuits(utcnow())

    await eventually(plain_is_open)
    for msg in messages:
        await eventually(partial(_is, store, msg.id, slow.id, MessageStatus.SUCCESS))
    assert sum(c.url == slow.url for c in transport.calls) >= 7
    assert slow.id not in await store.open_circuits(utcnow())
