"""The instrumentation seam: typed events that hookline's parts emit, and hooks that consume them.

The API app, the batch writers, the worker and the transport each hold one
``Instrumentation`` and tell it what happened; nothing on those paths knows which consumers
exist. Logging is the first consumer (``LoggingHook``, in text or JSON lines:
``configure_logging``), Prometheus metrics the second (``MetricsHook``); operational
webhooks plug in the same way. The shape follows stamina's ``RetryHook``/``RetryDetails``:
a hook is a callable that receives frozen event data.

An emitter asks ``wants(EventType)`` before it builds an event, so with no consumer for that
kind the cost is one set lookup (``docs/performance-decisions.md``).
"""

from hookline.instrumentation._events import (
    AnomaliesEvaluated,
    AnomalyDetected,
    AnomalyResolved,
    AttemptFinished,
    AttemptMilestone,
    BackgroundTaskFinished,
    BacklogSampled,
    BatchCommitted,
    BreakerClosed,
    BreakerOpened,
    ConnectionOpened,
    DeliveryExhausted,
    DeliveryHeld,
    EndpointCreated,
    EndpointDeleted,
    EndpointDisabled,
    EndpointEnabled,
    EndpointFailing,
    EndpointRecovered,
    EndpointUpdated,
    Event,
    FailureGroupOpened,
    MessageAccepted,
    RequestServed,
)
from hookline.instrumentation._hooks import NO_INSTRUMENTATION, Hook, Instrumentation
from hookline.instrumentation._log_format import LOG_FORMATS, configure_logging
from hookline.instrumentation._logging import LoggingHook
from hookline.instrumentation._metrics import MetricsHook, prepare_directory, process_exited
from hookline.instrumentation._request_ids import REQUEST_ID
from hookline.instrumentation._tracing import (
    TRACINGS,
    AttemptSpan,
    PublishSpan,
    RequestSpan,
    Tracing,
    load_tracing,
    tracing_installed,
)

__all__ = [
    "LOG_FORMATS",
    "NO_INSTRUMENTATION",
    "REQUEST_ID",
    "TRACINGS",
    "AnomaliesEvaluated",
    "AnomalyDetected",
    "AnomalyResolved",
    "AttemptFinished",
    "AttemptMilestone",
    "AttemptSpan",
    "BackgroundTaskFinished",
    "BacklogSampled",
    "BatchCommitted",
    "BreakerClosed",
    "BreakerOpened",
    "ConnectionOpened",
    "DeliveryExhausted",
    "DeliveryHeld",
    "EndpointCreated",
    "EndpointDeleted",
    "EndpointDisabled",
    "EndpointEnabled",
    "EndpointFailing",
    "EndpointRecovered",
    "EndpointUpdated",
    "Event",
    "FailureGroupOpened",
    "Hook",
    "Instrumentation",
    "LoggingHook",
    "MessageAccepted",
    "MetricsHook",
    "PublishSpan",
    "RequestServed",
    "RequestSpan",
    "Tracing",
    "configure_logging",
    "load_tracing",
    "prepare_directory",
    "process_exited",
    "tracing_installed",
]
