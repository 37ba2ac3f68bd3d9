"""Traces through the real API, store and worker, with the SDK's in-memory exporter: one trace
from a producer's ``traceparent`` through the request, the publish and every attempt, and the
``traceparent`` an opted-in endpoint receives (docs/observability.md, "Traces")."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from standardwebhooks import Webhook

from hookline.api.app import Services
from hookline.api.routes import create_app
from hookline.config import load_settings
from hookline.delivery.worker import Worker
from hookline.domain.models import MessageStatus
from hookline.instrumentation import Tracing
from hookline.instrumentation._otel import OtelTracing
from hookline.operations.context import Operations
from hookline.server import ensure_admin_token
from hookline.storage.base import Store
from tests.integration.conftest import ADMIN_TOKEN
from tests.integration.test_worker import FakeTransport, _is, config, eventually, ok, status

PRODUCER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PRODUCER_SPAN = "00f067aa0ba902b7"
PRODUCER = f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"
FORWARDED = "https://rx.example/forwarded?token=s3cret"
PLAIN = "https://rx.example/plain"


@dataclass
class Stack:
    client: httpx.AsyncClient
    store: Store
    transport: FakeTransport
    spans: InMemorySpanExporter

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()


async def _stack(
    store: Store, tracing: Tracing | None, exporter: InMemorySpanExporter
) -> AsyncIterator[Stack]:
    """The API and a worker over ``store``, sharing ``tracing``, with a scripted receiver."""
    settings = load_settings({"admin_token": ADMIN_TOKEN}, environ={})
    await ensure_admin_token(store, settings)
    ops = Operations(store, base_url=settings.base_url, tracing=tracing)
    transport = FakeTransport()
    worker = Worker(store, transport, config(), tracing=tracing)
    task = asyncio.create_task(worker.run())
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(Services(ops=ops, settings=settings))),
            base_url="http://hookline",
            headers={"authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as client:
            yield Stack(client, store, transport, exporter)
    finally:
        worker.stop()
        await asyncio.wait_for(task, 10)


class _RecordedTracing(OtelTracing):
    """``OtelTracing`` over an SDK provider that keeps finished spans in memory."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        super().__init__(provider, "test")


@pytest.fixture
async def traced(store: Store) -> AsyncIterator[Stack]:
    tracing = _RecordedTracing()
    async for stack in _stack(store, tracing, tracing.exporter):
        yield stack


@pytest.fixture
async def untraced(store: Store) -> AsyncIterator[Stack]:
    async for stack in _stack(store, None, InMemorySpanExporter()):
        yield stack


async def _two_endpoints(stack: Stack) -> tuple[str, str, str]:
    """An application with an endpoint that opted in to forwarding and one that did not."""
    app = (await stack.client.post("/api/v1/app", json={"name": "Traced"})).json()
    forwarded = await stack.client.post(
        f"/api/v1/app/{app['id']}/endpoint",
        json={"url": FORWARDED, "policy": {"traceContext": {"forward": True}}},
    )
    plain = await stack.client.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": PLAIN})
    assert forwarded.status_code == plain.status_code == 201
    assert forwarded.json()["policy"] == {"traceContext": {"forward": True}}
    return app["id"], forwarded.json()["id"], plain.json()["id"]


async def _publish(stack: Stack, app_id: str, headers: dict[str, str]) -> str:
    response = await stack.client.post(
        f"/api/v1/app/{app_id}/msg", json={"eventType": "e.x", "payload": {"n": 1}}, headers=headers
    )
    assert response.status_code == 202
    msg_id: str = response.json()["id"]
    return msg_id


async def _delivered(stack: Stack, msg_id: str, *endpoint_ids: str) -> None:
    for endpoint_id in endpoint_ids:
        await eventually(partial(_is, stack.store, msg_id, endpoint_id, MessageStatus.SUCCESS))


def _hex(span_id: int) -> str:
    return format(span_id, "016x")


async def test_one_trace_runs_from_the_producers_span_through_the_publish_to_every_attempt(
    traced: Stack,
) -> None:
    """The request span is the producer span's child, the publish span the request's, and
    each attempt (a 500, its retry, and the other endpoint's 200) the publish span's: all in
    the producer's trace, with HTTP attributes and no path, query or secret."""
    traced.transport.script[FORWARDED] = [status(500), ok()]
    app_id, forwarded_id, plain_id = await _two_endpoints(traced)
    traced.spans.clear()
    msg_id = await _publish(traced, app_id, {"traceparent": PRODUCER, "tracestate": "rojo=1"})
    await _delivered(traced, msg_id, forwarded_id, plain_id)
    await eventually(lambda: len(traced.finished()) == 5)
    spans = traced.finished()
    assert {format(s.context.trace_id, "032x") for s in spans} == {PRODUCER_TRACE}
    (request,) = [s for s in spans if s.kind is SpanKind.SERVER]
    (publish,) = [s for s in spans if s.kind is SpanKind.PRODUCER]
    attempts = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert request.parent is not None and _hex(request.parent.span_id) == PRODUCER_SPAN
    assert request.name == "POST /api/v1/app/{app_id}/msg"
    assert request.attributes is not None and request.attributes["http.response.status_code"] == 202
    assert publish.parent is not None and publish.parent.span_id == request.context.span_id
    assert publish.attributes is not None and publish.attributes["hookline.msg_id"] == msg_id
    assert len(attempts) == 3
    for attempt in attempts:
        assert attempt.parent is not None and attempt.parent.span_id == publish.context.span_id
        attributes = dict(attempt.attributes or {})
        assert attributes["server.address"] == "rx.example"
        assert attributes["http.request.method"] == "POST"
        assert attributes["hookline.msg_id"] == msg_id
        assert not any(
            "s3cret" in str(value) or "/forwarded" in str(value) for value in attributes.values()
        )
    outcomes = sorted(
        (
            str(a.attributes["hookline.endpoint_id"]),
            a.attributes["hookline.attempt_number"],
            a.attributes["http.response.status_code"],
            a.attributes["hookline.outcome"],
        )
        for a in attempts
        if a.attributes is not None
    )
    assert outcomes == sorted(
        [
            (forwarded_id, 1, 500, "retry"),
            (forwarded_id, 2, 200, "success"),
            (plain_id, 1, 200, "success"),
        ]
    )


async def test_an_opted_in_endpoint_receives_its_attempts_traceparent_and_still_verifies(
    traced: Stack,
) -> None:
    """Each attempt to the opted-in endpoint carries the attempt span's own context and the
    producer's tracestate; the other endpoint gets neither; signatures still verify with
    the ``standardwebhooks`` library (the header is not part of the signed content)."""
    traced.transport.script[FORWARDED] = [status(500), ok()]
    app_id, forwarded_id, plain_id = await _two_endpoints(traced)
    msg_id = await _publish(traced, app_id, {"traceparent": PRODUCER, "tracestate": "rojo=1"})
    await eventually(lambda: _is(traced.store, msg_id, forwarded_id, MessageStatus.SUCCESS))
    await eventually(lambda: _is(traced.store, msg_id, plain_id, MessageStatus.SUCCESS))
    await eventually(lambda: len([s for s in traced.finished() if s.kind is SpanKind.CLIENT]) == 3)
    attempt_ids = {
        _hex(s.context.span_id)
        for s in traced.finished()
        if s.kind is SpanKind.CLIENT
        and s.attributes
        and s.attributes["hookline.endpoint_id"] == forwarded_id
    }
    to_forwarded = [c for c in traced.transport.calls if c.url == FORWARDED]
    to_plain = [c for c in traced.transport.calls if c.url == PLAIN]
    assert len(to_forwarded) == 2 and len(to_plain) == 1
    assert {c.headers["traceparent"] for c in to_forwarded} == {
        f"00-{PRODUCER_TRACE}-{span}-01" for span in attempt_ids
    }
    assert {c.headers["tracestate"] for c in to_forwarded} == {"rojo=1"}
    assert "traceparent" not in to_plain[0].headers and "tracestate" not in to_plain[0].headers
    secret = await traced.client.get(f"/api/v1/app/{app_id}/endpoint/{forwarded_id}/secret")
    for call in to_forwarded:
        Webhook(secret.json()["key"]).verify(call.body, dict(call.headers))


async def test_a_publish_without_or_with_a_malformed_traceparent_starts_hooklines_own_trace(
    traced: Stack,
) -> None:
    """No header, or one the W3C spec says to ignore: a 202 all the same, a root request
    span, and the attempt in the request's trace."""
    app_id, forwarded_id, plain_id = await _two_endpoints(traced)
    for headers in ({}, {"traceparent": "00-zzzz-bad"}):
        traced.spans.clear()
        msg_id = await _publish(traced, app_id, headers)
        await _delivered(traced, msg_id, forwarded_id, plain_id)
        await eventually(lambda: len(traced.finished()) == 4)
        spans = traced.finished()
        (request,) = [s for s in spans if s.kind is SpanKind.SERVER]
        assert request.parent is None
        assert {s.context.trace_id for s in spans} == {request.context.trace_id}


async def test_with_tracing_off_the_producers_context_is_kept_and_forwarded_as_sent(
    untraced: Stack,
) -> None:
    """No span is recorded, but the producer's traceparent and tracestate are stored with the
    message and an opted-in endpoint receives them unchanged, on the retry too."""
    untraced.transport.script[FORWARDED] = [status(500), ok()]
    app_id, forwarded_id, plain_id = await _two_endpoints(untraced)
    msg_id = await _publish(untraced, app_id, {"traceparent": PRODUCER, "tracestate": "rojo=1"})
    await eventually(lambda: _is(untraced.store, msg_id, forwarded_id, MessageStatus.SUCCESS))
    await eventually(lambda: _is(untraced.store, msg_id, plain_id, MessageStatus.SUCCESS))
    stored = await untraced.store.get_message(app_id, msg_id)
    assert stored is not None and stored.trace_context == f"{PRODUCER} rojo=1"
    to_forwarded = [c for c in untraced.transport.calls if c.url == FORWARDED]
    assert [c.headers["traceparent"] for c in to_forwarded] == [PRODUCER, PRODUCER]
    assert [c.headers["tracestate"] for c in to_forwarded] == ["rojo=1", "rojo=1"]
    (to_plain,) = [c for c in untraced.transport.calls if c.url == PLAIN]
    assert "traceparent" not in to_plain.headers


async def test_with_tracing_off_a_message_without_a_traceparent_forwards_nothing(
    untraced: Stack,
) -> None:
    """Forwarding passes a context on; with none stored and no span of its own, hookline
    makes none up."""
    app_id, forwarded_id, _ = await _two_endpoints(untraced)
    msg_id = await _publish(untraced, app_id, {"traceparent": "garbage"})
    await eventually(lambda: _is(untraced.store, msg_id, forwarded_id, MessageStatus.SUCCESS))
    stored = await untraced.store.get_message(app_id, msg_id)
    assert stored is not None and stored.trace_context is None
    (call,) = [c for c in untraced.transport.calls if c.url == FORWARDED]
    assert "traceparent" not in call.headers
