"""``HOOKLINE_TRACING=otlp`` in a real ``hookline serve``: spans reach an OTLP/HTTP receiver
on loopback as one trace from the producer's span through every attempt, and only the
opted-in endpoint receives a ``traceparent`` (docs/observability.md, "Traces")."""

from __future__ import annotations

from pathlib import Path

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from standardwebhooks import Webhook

from tests.e2e.harness import (
    ADMIN_TOKEN,
    HooklineProcess,
    Receiver,
    free_port,
    sqlite_url,
    wait_until,
)

WAIT_SECONDS = 30.0
PRODUCER_TRACE = "0af7651916cd43dd8448eb211c80319c"
PRODUCER_SPAN = "b7ad6b7169203331"


def _spans(collector: Receiver) -> list[Span]:
    """Every span the collector was sent, decoded from OTLP's protobuf."""
    found: list[Span] = []
    for request in collector.received("/v1/traces"):
        export = ExportTraceServiceRequest.FromString(request.body)
        for resource in export.resource_spans:
            for scope in resource.scope_spans:
                found.extend(scope.spans)
    return found


def _attributes(span: Span) -> dict[str, object]:
    values: dict[str, object] = {}
    for attribute in span.attributes:
        value = attribute.value
        values[attribute.key] = (
            value.int_value if value.HasField("int_value") else value.string_value
        )
    return values


def _lowered(headers: dict[str, str]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers.items()}


def test_a_published_message_yields_one_trace_exported_over_otlp(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A message published with a producer ``traceparent`` to two endpoints, one answering
    500 then 200: the request span is the producer span's child, the publish span the
    request's, the three attempt spans (the 500, its retry, the other endpoint's 200) the
    publish span's, all in the producer's trace; the opted-in endpoint received each
    attempt's own ``traceparent``, with a signature that still verifies, and the other
    endpoint none."""
    collector = Receiver().start()
    answers = iter([500])
    receiver.status_for["/forwarded"] = lambda _: next(answers, 200)
    settings = {
        "HOOKLINE_POLL_INTERVAL": "0.05",
        "HOOKLINE_RETRY_SCHEDULE": "0.2",
        "HOOKLINE_TRACING": "otlp",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{collector.url}/v1/traces",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_SERVICE_NAME": "hookline-e2e",
    }
    server = HooklineProcess(sqlite_url(tmp_path), free_port(), settings, tmp_path).start("--dev")
    try:
        with httpx.Client(
            base_url=server.url, headers={"authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=10
        ) as client:
            app = client.post("/api/v1/app", json={"name": "Traced"}).json()
            forwarded = client.post(
                f"/api/v1/app/{app['id']}/endpoint",
                json={
                    "url": f"{receiver.url}/forwarded",
                    "policy": {"traceContext": {"forward": True}},
                },
            ).json()
            client.post(f"/api/v1/app/{app['id']}/endpoint", json={"url": f"{receiver.url}/plain"})
            secret = client.get(f"/api/v1/app/{app['id']}/endpoint/{forwarded['id']}/secret")
            published = client.post(
                f"/api/v1/app/{app['id']}/msg",
                json={"eventType": "e.x", "payload": {"n": 1}},
                headers={"traceparent": f"00-{PRODUCER_TRACE}-{PRODUCER_SPAN}-01"},
            )
            assert published.status_code == 202
            msg_id = published.json()["id"]
            wait_until(
                lambda: (
                    len(receiver.received("/forwarded")) == 2
                    and len(receiver.received("/plain")) == 1
                ),
                WAIT_SECONDS,
                "three attempts",
            )
            wait_until(
                lambda: sum(s.kind == Span.SPAN_KIND_CLIENT for s in _spans(collector)) == 3,
                WAIT_SECONDS,
                "the attempt spans at the collector",
            )
    finally:
        assert server.terminate() == 0, server.output()
        collector.stop()
    spans = [s for s in _spans(collector) if s.trace_id.hex() == PRODUCER_TRACE]
    (request,) = [s for s in spans if s.name == "POST /api/v1/app/{app_id}/msg"]
    (publish,) = [s for s in spans if s.name == "publish"]
    attempts = [s for s in spans if s.kind == Span.SPAN_KIND_CLIENT]
    assert request.kind == Span.SPAN_KIND_SERVER and request.parent_span_id.hex() == PRODUCER_SPAN
    assert publish.parent_span_id == request.span_id
    assert _attributes(publish)["hookline.msg_id"] == msg_id
    assert len(attempts) == 3 and {a.parent_span_id for a in attempts} == {publish.span_id}
    statuses = sorted(
        (
            str(_attributes(a)["hookline.endpoint_id"]) == forwarded["id"],
            _attributes(a)["http.response.status_code"],
        )
        for a in attempts
    )
    assert statuses == [(False, 200), (True, 200), (True, 500)]
    to_forwarded = receiver.received("/forwarded")
    forwarded_spans = {
        a.span_id.hex()
        for a in attempts
        if _attributes(a)["hookline.endpoint_id"] == forwarded["id"]
    }
    assert {_lowered(r.headers)["traceparent"] for r in to_forwarded} == {
        f"00-{PRODUCER_TRACE}-{span}-01" for span in forwarded_spans
    }
    for request_received in to_forwarded:
        Webhook(secret.json()["key"]).verify(
            request_received.body, _lowered(request_received.headers)
        )
    (to_plain,) = receiver.received("/plain")
    assert "traceparent" not in _lowered(to_plain.headers)
