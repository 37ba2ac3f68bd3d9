"""``LoggingHook``: the first consumer of the instrumentation seam, hookline's own log lines.

Lines name ids, status codes and reasons; never a payload, a secret, a header value or a
token (DESIGN.md, "Safety"). The same ids go with each line as fields (``extra=``), which
JSON lines carry as keys (``_log_format.py``): ``msg_id``, ``endpoint_id``, ``attempt_id``,
``status_code``, ``task_id``, ``app_id``, ``anomaly_id``; ``request_id`` is added by the
handler's filter (``_request_ids.py``).
"""

from __future__ import annotations

import logging

from hookline.domain.anomaly import Anomaly, describe
from hookline.instrumentation._events import (
    AnomalyDetected,
    AnomalyResolved,
    AttemptFinished,
    BackgroundTaskFinished,
    BreakerClosed,
    BreakerOpened,
    DeliveryExhausted,
    EndpointDisabled,
    EndpointEnabled,
    EndpointRecovered,
    Event,
    FailureGroupOpened,
    MessageAccepted,
)

log = logging.getLogger("hookline.events")

_ALWAYS: frozenset[type[Event]] = frozenset(
    {BreakerOpened, BreakerClosed, EndpointDisabled, EndpointEnabled, DeliveryExhausted}
    | {BackgroundTaskFinished, EndpointRecovered, AnomalyDetected, AnomalyResolved}
    | {FailureGroupOpened}
)


class LoggingHook:
    """Logs state changes always, and every publish and attempt when ``attempts`` is set
    (``--dev``: a line per message costs too much at production rates)."""

    def __init__(self, *, attempts: bool = False) -> None:
        each: set[type[Event]] = {AttemptFinished, MessageAccepted} if attempts else set()
        self.events: frozenset[type[Event]] = _ALWAYS | each

    def __call__(self, event: Event) -> None:
        match event:
            case MessageAccepted():
                # Heard inline by the publish, so the line also carries the request's id.
                log.info(
                    "message %s accepted for %s: %d deliveries",
                    event.msg_id,
                    event.app_id,
                    event.deliveries,
                    extra={"msg_id": event.msg_id, "app_id": event.app_id},
                )
            case AttemptFinished():
                log.info(
                    "attempt %s %s -> %s status=%s %dms %s%s",
                    event.attempt_id,
                    event.msg_id,
                    event.endpoint_id,
                    event.status_code,
                    event.duration_ms,
                    event.outcome,
                    f" ({event.error})" if event.error else "",
                    extra={
                        "attempt_id": event.attempt_id,
                        "msg_id": event.msg_id,
                        "endpoint_id": event.endpoint_id,
                        "status_code": event.status_code,
                        "duration_ms": event.duration_ms,
                        "outcome": event.outcome,
                    },
                )
            case BreakerOpened():
                log.warning(
                    "endpoint %s circuit opened (%s; %d failures in a row); "
                    "holding its deliveries for %.0fs",
                    event.endpoint_id,
                    event.reason,
                    event.failures,
                    event.cooldown_s,
                    extra={"endpoint_id": event.endpoint_id},
                )
            case BreakerClosed():
                log.info(
                    "endpoint %s answers again; its breaker is closed",
                    event.endpoint_id,
                    extra={"endpoint_id": event.endpoint_id},
                )
            case EndpointDisabled():
                log.warning(
                    "endpoint %s disabled: %s",
                    event.endpoint_id,
                    event.reason,
                    extra={"endpoint_id": event.endpoint_id},
                )
            case EndpointRecovered():
                failed_for = (event.recovered_at - event.failing_since).total_seconds()
                log.info(
                    "endpoint %s answers again after failing for %.0fs",
                    event.endpoint_id,
                    failed_for,
                    extra={"endpoint_id": event.endpoint_id},
                )
            case EndpointEnabled():
                log.info(
                    "endpoint %s enabled",
                    event.endpoint_id,
                    extra={"endpoint_id": event.endpoint_id},
                )
            case DeliveryExhausted():
                log.warning(
                    "message %s to endpoint %s failed after %d attempts; no retry is scheduled",
                    event.msg_id,
                    event.endpoint_id,
                    event.attempts,
                    extra={"msg_id": event.msg_id, "endpoint_id": event.endpoint_id},
                )
            case AnomalyDetected():
                anomaly = event.anomaly
                log.warning(
                    "anomaly %s (%s): %s",
                    anomaly.id,
                    anomaly.kind,
                    describe(anomaly),
                    extra=_anomaly_fields(event.anomaly),
                )
            case AnomalyResolved():
                anomaly = event.anomaly
                log.info(
                    "anomaly %s (%s) of %s ended",
                    anomaly.id,
                    anomaly.kind,
                    anomaly.subject_key,
                    extra=_anomaly_fields(event.anomaly),
                )
            case FailureGroupOpened():
                group = event.group
                log.warning(
                    "failure group %s %s: endpoint %s of %s fails with %s%s",
                    group.id,
                    "reopened" if group.reopened else "opened",
                    group.endpoint_id,
                    group.app_id,
                    group.outcome,
                    f" ({group.status_code})" if group.status_code else "",
                    extra={"app_id": group.app_id, "endpoint_id": group.endpoint_id},
                )
            case BackgroundTaskFinished():
                log.info(
                    "background task %s (%s) of %s ended %s: %s",
                    event.task_id,
                    event.task,
                    event.app_id,
                    event.status,
                    ", ".join(f"{key}={value}" for key, value in event.data.items()),
                    extra={"task_id": event.task_id},
                )


def _anomaly_fields(anomaly: Anomaly) -> dict[str, str]:
    fields = {"anomaly_id": anomaly.id, "app_id": anomaly.app_id}
    if anomaly.endpoint_id is not None:
        fields["endpoint_id"] = anomaly.endpoint_id
    return fields
