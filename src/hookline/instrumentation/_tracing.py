"""What the API, the publish and the attempt ask of a tracer, without OpenTelemetry.

Spans, unlike the events of ``_events.py``, wrap work while it runs and hand their context
to the next step (the request's to the publish, the publish's to the message row, an
attempt's to the ``traceparent`` it forwards), so they are a seam of their own rather than
a ``Hook``. Every caller holds a ``Tracing`` or None and asks ``is not None`` before doing
anything: with tracing off (the default) nothing here is called and OpenTelemetry is never
imported (``_otel.py`` is loaded by ``load_tracing`` only when ``HOOKLINE_TRACING`` asks).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Protocol

from hookline.domain.tracecontext import TraceContext


class RequestSpan(Protocol):
    def finish(self, route: str, status: int) -> None:
        """End the span with the route's path template and the answer's status."""


class PublishSpan(Protocol):
    def context(self) -> TraceContext:
        """The span's own context: what the message keeps, so its attempts are its children."""

    def finish(self, msg_id: str | None, deliveries: int, error: str | None) -> None: ...


class AttemptSpan(Protocol):
    def context(self) -> TraceContext:
        """The span's context: the ``traceparent`` an opted-in endpoint receives."""

    def finish(self, status_code: int, outcome: str, error: str | None) -> None: ...


class Tracing(Protocol):
    def request(self, method: str, headers: Mapping[str, str], request_id: str) -> RequestSpan:
        """Start an API request's server span, as a child of the caller's ``traceparent``
        if it sent one, and make it current until ``finish``."""

    def publish(self, app_id: str, event_type: str) -> PublishSpan:
        """Start a publish span under the current request span."""

    def attempt(
        self, parent: TraceContext | None, *, url: str, endpoint_id: str, msg_id: str, number: int
    ) -> AttemptSpan:
        """Start an attempt's client span under the message's stored context."""

    def shutdown(self) -> None:
        """Export what is buffered; called once as the process stops."""


TRACINGS = ("off", "otlp")
"""The values of ``HOOKLINE_TRACING``."""


def tracing_installed() -> bool:
    """Whether ``hookline[otel]`` is installed: checked once before ``serve --processes N``
    forks, so a missing extra stops the start with one message, not one per process."""
    try:
        return all(
            importlib.util.find_spec(name) is not None
            for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http")
        )
    except ModuleNotFoundError:  # a parent package is missing
        return False


def load_tracing(kind: str, version: str) -> Tracing | None:
    """The tracer ``HOOKLINE_TRACING`` asks for, or None; a clear error, naming the extra to
    install, when OpenTelemetry is missing."""
    if kind == "off":
        return None
    try:
        from hookline.instrumentation._otel import OtelTracing
    except ImportError as exc:
        raise RuntimeError(
            f"HOOKLINE_TRACING={kind} needs OpenTelemetry, which is not installed ({exc}); "
            "install hookline[otel] (pip install 'hookline[otel]')"
        ) from None
    return OtelTracing.from_environment(version)
