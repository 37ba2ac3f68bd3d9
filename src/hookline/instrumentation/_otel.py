"""``OtelTracing``: hookline's spans through the OpenTelemetry SDK, exported over OTLP/HTTP.

Imported only when ``HOOKLINE_TRACING=otlp`` (``_tracing.load_tracing``), so that a process
with tracing off never loads OpenTelemetry. The exporter, the sampler and the resource read
the standard ``OTEL_*`` variables (``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_SERVICE_NAME``,
``OTEL_TRACES_SAMPLER``, …) as every OpenTelemetry SDK does; the service is named
``hookline`` unless they name it. Spans are sent by the SDK's batch processor, off the event
loop's path (its own thread), so an attempt pays for building its span, not for exporting it.

What a span holds is bounded by what a log line may hold (``_logging.py``): ids, the
method, the route's template, the destination's scheme, host and port (never its path or
query, where some receivers keep a secret), status codes and outcomes; never a payload, a
header value, a signature or a token.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from hookline.domain.tracecontext import TraceContext, TraceParent

_PROPAGATOR = TraceContextTextMapPropagator()


def _context_of(span: Span) -> TraceContext:
    found = span.get_span_context()
    state = found.trace_state.to_header() if found.trace_state else None
    parent = TraceParent(
        format(found.trace_id, "032x"), format(found.span_id, "016x"), int(found.trace_flags)
    )
    return TraceContext(parent, state or None)


def _carrier(context: TraceContext) -> dict[str, str]:
    carrier = {"traceparent": context.parent.header()}
    if context.state:
        carrier["tracestate"] = context.state
    return carrier


class _RequestSpan:
    __slots__ = ("_method", "_span", "_token")

    def __init__(self, span: Span, method: str) -> None:
        self._span = span
        self._method = method
        self._token = otel_context.attach(trace.set_span_in_context(span))

    def finish(self, route: str, status: int) -> None:
        span = self._span
        span.update_name(f"{self._method} {route}")
        span.set_attribute("http.route", route)
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", str(status))
        span.end()
        otel_context.detach(self._token)


class _PublishSpan:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def context(self) -> TraceContext:
        return _context_of(self._span)

    def finish(self, msg_id: str | None, deliveries: int, error: str | None) -> None:
        span = self._span
        if msg_id is not None:
            span.set_attribute("hookline.msg_id", msg_id)
        span.set_attribute("hookline.deliveries", deliveries)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attribute("error.type", error)
        span.end()


class _AttemptSpan:
    __slots__ = ("_span",)

    def __init__(self, span: Span) -> None:
        self._span = span

    def context(self) -> TraceContext:
        return _context_of(self._span)

    def finish(self, status_code: int, outcome: str, error: str | None) -> None:
        span = self._span
        if status_code:
            span.set_attribute("http.response.status_code", status_code)
        span.set_attribute("hookline.outcome", outcome)
        if outcome != "success":
            # The transport's reason for an answerless attempt ("timed out", "connection
            # refused", …) names no secret; an answer's body is never recorded.
            kind = str(status_code) if status_code else (error or "error")
            span.set_status(Status(StatusCode.ERROR))
            span.set_attribute("error.type", kind)
        span.end()


class OtelTracing:
    """Spans of one process: the API's requests, publishes and delivery attempts."""

    def __init__(self, provider: TracerProvider, version: str = "") -> None:
        self._provider = provider
        self._tracer = provider.get_tracer("hookline", version)

    @classmethod
    def from_environment(cls, version: str) -> OtelTracing:
        resource = Resource.create({SERVICE_VERSION: version})
        if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
            resource = resource.merge(Resource({SERVICE_NAME: "hookline"}))
        provider = TracerProvider(resource=resource)
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        return cls(provider, version)

    def request(self, method: str, headers: Mapping[str, str], request_id: str) -> _RequestSpan:
        # No traceparent: a root span, whatever context the server's task runs in.
        parent = (
            _PROPAGATOR.extract(headers) if "traceparent" in headers else otel_context.Context()
        )
        span = self._tracer.start_span(
            method,
            parent,
            kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "hookline.request_id": request_id},
        )
        return _RequestSpan(span, method)

    def publish(self, app_id: str, event_type: str) -> _PublishSpan:
        span = self._tracer.start_span(
            "publish",
            kind=SpanKind.PRODUCER,
            attributes={"hookline.app_id": app_id, "hookline.event_type": event_type},
        )
        return _PublishSpan(span)

    def attempt(
        self, parent: TraceContext | None, *, url: str, endpoint_id: str, msg_id: str, number: int
    ) -> _AttemptSpan:
        where = urlsplit(url)
        attributes: dict[str, str | int] = {
            "http.request.method": "POST",
            "url.scheme": where.scheme,
            "server.address": where.hostname or "",
            "hookline.endpoint_id": endpoint_id,
            "hookline.msg_id": msg_id,
            "hookline.attempt_number": number,
        }
        try:
            port = where.port
        except ValueError:
            port = None
        if port is not None:
            attributes["server.port"] = port
        context = _PROPAGATOR.extract(_carrier(parent)) if parent is not None else None
        span = self._tracer.start_span(
            "POST", context or otel_context.Context(), kind=SpanKind.CLIENT, attributes=attributes
        )
        return _AttemptSpan(span)

    def shutdown(self) -> None:
        self._provider.shutdown()
