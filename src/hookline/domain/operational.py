"""Operational webhooks and auto-disable: the pure rules.

Operational webhooks tell the operator what happens to the deployment's endpoints and
deliveries (Svix's ``/api/v1/operational-webhook``). Their payloads are Svix's
``{"type": …, "data": {…}}`` with camelCase fields, so a receiver written for Svix's
operational webhooks reads hookline's unchanged. hookline adds types of its own, for which
Svix has no event: ``endpoint.failing`` (the auto-disable warnings) and
``endpoint.circuit.opened`` / ``endpoint.circuit.closed`` (the circuit breaker).

Auto-disable (as Svix): an endpoint whose every attempt has failed (any answer other than a
2xx, or none) for ``period`` is disabled. Before that it is warned about at half and at
four fifths of the period. Each step happens once per failing period: a success starts a
new one.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from hookline.domain.anomaly import KINDS

OPERATIONAL_APP_ID = "app_" + "0" * 27
"""The reserved application whose endpoints are the operational-webhook endpoints. It is
created on first use, never listed, and no route under ``/api/v1/app`` reaches it."""

ENDPOINT_CREATED = "endpoint.created"
ENDPOINT_UPDATED = "endpoint.updated"
ENDPOINT_DELETED = "endpoint.deleted"
ENDPOINT_DISABLED = "endpoint.disabled"
ENDPOINT_ENABLED = "endpoint.enabled"
ENDPOINT_FAILING = "endpoint.failing"
"""hookline's own: the endpoint will be disabled at ``disableAt`` unless it succeeds."""
ENDPOINT_CIRCUIT_OPENED = "endpoint.circuit.opened"
"""hookline's own: the endpoint's circuit opened; its deliveries wait until ``probeAt``."""
ENDPOINT_CIRCUIT_CLOSED = "endpoint.circuit.closed"
"""hookline's own: the endpoint answered a probe and its held deliveries go out again."""
ATTEMPT_FAILING = "message.attempt.failing"
ATTEMPT_EXHAUSTED = "message.attempt.exhausted"
ATTEMPT_RECOVERED = "message.attempt.recovered"
BACKGROUND_TASK_FINISHED = "background_task.finished"
ANOMALY_PREFIX = "hookline.anomaly."
"""hookline's own: ``hookline.anomaly.<kind>`` when anomaly detection opens an anomaly
(``domain/anomaly.py``: ``failure_spike``, ``latency_shift``, ``volume_drop``), and
``hookline.anomaly.resolved`` when one ends."""
ANOMALY_RESOLVED = ANOMALY_PREFIX + "resolved"
ANOMALY_TYPES = tuple(ANOMALY_PREFIX + kind for kind in KINDS)
FAILURE_GROUP_OPENED = "hookline.failure_group.opened"
"""hookline's own: failures of a new kind for one endpoint (a failure group) began, or
began again after the group was resolved (``domain/failure_groups.py``)."""

EVENT_TYPES = (
    ATTEMPT_EXHAUSTED,
    ATTEMPT_FAILING,
    ATTEMPT_RECOVERED,
    BACKGROUND_TASK_FINISHED,
    ENDPOINT_CIRCUIT_CLOSED,
    ENDPOINT_CIRCUIT_OPENED,
    ENDPOINT_CREATED,
    ENDPOINT_DELETED,
    ENDPOINT_DISABLED,
    ENDPOINT_ENABLED,
    ENDPOINT_FAILING,
    ENDPOINT_UPDATED,
    *ANOMALY_TYPES,
    ANOMALY_RESOLVED,
    FAILURE_GROUP_OPENED,
)
"""Every type an operational-webhook endpoint may filter on (its ``filterTypes``)."""

FAILING_AFTER_ATTEMPTS = 4
"""Svix sends ``message.attempt.failing`` on a delivery's fourth failed attempt."""

DEFAULT_DISABLE_AFTER = timedelta(days=5)


def unknown_event_types(names: list[str] | tuple[str, ...]) -> list[str]:
    """The names an operational-webhook endpoint cannot filter on."""
    return [name for name in names if name not in EVENT_TYPES]


def attempt_event_type(attempt_number: int, outcome: str, manual: bool) -> str | None:
    """Which ``message.attempt.*`` event a scheduled attempt's end is, if any.

    ``outcome`` is ``AttemptFinished.outcome``. A success after the fourth attempt comes
    after a ``failing`` event was sent for that delivery (every earlier attempt failed), so
    it is a recovery; this needs no memory of what was sent, on any worker. Manual resends
    are outside the schedule and send nothing.
    """
    if manual:
        return None
    if outcome == "success":
        return ATTEMPT_RECOVERED if attempt_number > FAILING_AFTER_ATTEMPTS else None
    if outcome in ("fail", "gone"):
        return ATTEMPT_EXHAUSTED
    if attempt_number == FAILING_AFTER_ATTEMPTS:
        return ATTEMPT_FAILING
    return None


def is_attempt_failure(status_code: int) -> bool:
    """Auto-disable counts every answer but a 2xx as a failure, as Svix does."""
    return not 200 <= status_code < 300


class FailureStep(IntEnum):
    """How far an endpoint's failing period has gone; stored, and only ever raised."""

    NONE = 0
    WARNED_HALF = 1
    WARNED_LATE = 2
    DISABLED = 3


WARNING_FRACTIONS = {FailureStep.WARNED_HALF: 0.5, FailureStep.WARNED_LATE: 0.8}


def due_step(
    failing_since: datetime, done: FailureStep, now: datetime, period: timedelta
) -> FailureStep | None:
    """The step to take now for an endpoint failing since ``failing_since``, or None.

    Only the furthest step due is taken: a check that comes late (the process was down)
    disables without warning first, or sends the later warning only.
    """
    elapsed = now - failing_since
    if elapsed >= period:
        step = FailureStep.DISABLED
    elif elapsed >= period * WARNING_FRACTIONS[FailureStep.WARNED_LATE]:
        step = FailureStep.WARNED_LATE
    elif elapsed >= period * WARNING_FRACTIONS[FailureStep.WARNED_HALF]:
        step = FailureStep.WARNED_HALF
    else:
        return None
    return step if step > done else None


def disable_at(failing_since: datetime | None, period: timedelta) -> datetime | None:
    return None if failing_since is None else failing_since + period


def envelope(event_type: str, data: dict[str, Any]) -> dict[str, Any]:
    """The body of an operational webhook (Svix's ``{"type", "data"}``)."""
    return {"type": event_type, "data": data}


def endpoint_data(
    app_id: str, app_uid: str | None, endpoint_id: str, endpoint_uid: str | None
) -> dict[str, Any]:
    """Svix's ``EndpointCreatedEventData`` (and updated, deleted, enabled)."""
    return {
        "appId": app_id,
        "appUid": app_uid,
        "endpointId": endpoint_id,
        "endpointUid": endpoint_uid,
    }


def attempt_data(
    app_id: str,
    app_uid: str | None,
    msg_id: str,
    msg_event_id: str | None,
    endpoint_id: str,
    attempt: dict[str, Any],
) -> dict[str, Any]:
    """Svix's ``MessageAttempt{Failing,Exhausted,Recovered}EventData``; ``attempt`` is
    ``{id, responseStatusCode, timestamp}``; ``msgEventId`` is the message's ``eventId``,
    null when it has none."""
    return {
        "appId": app_id,
        "appUid": app_uid,
        "msgId": msg_id,
        "msgEventId": msg_event_id,
        "endpointId": endpoint_id,
        "lastAttempt": attempt,
    }
