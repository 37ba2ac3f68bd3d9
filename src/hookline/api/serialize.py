"""Domain values to response models: the only place wire names meet domain names."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import orjson

from hookline.api import schemas as s
from hookline.domain.anomaly import Anomaly, describe
from hookline.domain.audit import AuditEntry
from hookline.domain.breaker import CircuitView
from hookline.domain.models import (
    Application,
    Attempt,
    Delivery,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    Page,
)
from hookline.domain.ordering import is_held
from hookline.domain.ratelimit import RateLimitState
from hookline.domain.rollups import RollupSummary
from hookline.domain.tasks import BackgroundTask, DeadLetter
from hookline.operations.tasks import task_data

T = TypeVar("T")


def page(items: Page[Any], convert: Any) -> dict[str, Any]:
    return {
        "data": [convert(item) for item in items.data],
        "iterator": items.iterator,
        "prevIterator": items.prev_iterator,
        "done": items.done,
    }


def application(app: Application) -> s.ApplicationOut:
    return s.ApplicationOut(
        id=app.id,
        uid=app.uid,
        name=app.name,
        throttle_rate=app.throttle_rate,
        metadata=app.metadata,
        created_at=app.created_at,
        updated_at=app.updated_at,
        policy=app.policy.to_json(),
    )


def event_type(et: EventType) -> s.EventTypeOut:
    return s.EventTypeOut(
        name=et.name,
        description=et.description,
        archived=et.archived,
        deprecated=et.deprecated,
        schemas=et.schemas,
        group_name=et.group_name,
        feature_flags=list(et.feature_flags) if et.feature_flags is not None else None,
        created_at=et.created_at,
        updated_at=et.updated_at,
    )


def _list(values: tuple[str, ...] | None) -> list[str] | None:
    return None if values is None else list(values)


def _time(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


def circuit(value: CircuitView) -> s.CircuitOut:
    return s.CircuitOut(
        state=value.phase.value,
        consecutive_failures=value.consecutive_failures,
        failure_ratio=value.failure_ratio,
        reason=None if value.reason is None else value.reason.value,
        opened_at=_time(value.opened_at),
        next_probe_at=_time(value.next_probe_at),
        probing=value.probing,
    )


def endpoint(
    ep: Endpoint, state: CircuitView | None = None, disable_after: timedelta | None = None
) -> s.EndpointOut:
    """``state`` None: not read (a write's answer); a new endpoint's is CLOSED_VIEW.
    ``disable_after`` (the auto-disable period) gives ``disableAt`` to a failing one."""
    disable_at = None
    if disable_after is not None and ep.failing_since is not None and not ep.disabled:
        disable_at = ep.failing_since + disable_after
    return s.EndpointOut(
        id=ep.id,
        uid=ep.uid,
        url=ep.url,
        description=ep.description,
        throttle_rate=ep.throttle_rate,
        disabled=ep.disabled,
        event_types=_list(ep.event_types),
        channels=_list(ep.channels),
        metadata=ep.metadata,
        created_at=ep.created_at,
        updated_at=ep.updated_at,
        policy=ep.policy.to_json(),
        failing_since=ep.failing_since,
        disable_at=disable_at,
        circuit=None if state is None else circuit(state),
    )


def payload_of(msg: Message) -> dict[str, Any]:
    return {} if msg.payload is None else dict(orjson.loads(msg.payload))


def message_wire(msg: Message, with_content: bool = True) -> dict[str, Any]:
    """``MessageOut`` ready for orjson, on every publish's path: the payload goes out as the
    bytes that were stored, where the model would parse, validate and dump it again (a
    tenth of a publish's CPU). Tests hold the two to the same JSON."""
    payload = msg.payload if with_content and msg.payload is not None else b"{}"
    return {
        "id": msg.id,
        "eventType": msg.event_type,
        "eventId": msg.event_id,
        "payload": orjson.Fragment(payload),
        "channels": _list(msg.channels),
        "tags": _list(msg.tags),
        "timestamp": msg.timestamp,
        "deliverAt": msg.deliver_at,
        "orderingKey": msg.ordering_key,
    }


def message(msg: Message, with_content: bool = True) -> s.MessageOut:
    return s.MessageOut(
        id=msg.id,
        event_type=msg.event_type,
        event_id=msg.event_id,
        payload=payload_of(msg) if with_content else {},
        channels=_list(msg.channels),
        tags=_list(msg.tags),
        timestamp=msg.timestamp,
        deliver_at=msg.deliver_at,
        ordering_key=msg.ordering_key,
    )


def attempt(
    a: Attempt, msg: Message | None = None, msg_content: bool = True
) -> s.MessageAttemptOut:
    return s.MessageAttemptOut(
        id=a.id,
        msg_id=a.msg_id,
        endpoint_id=a.endpoint_id,
        url=a.url,
        response=a.response,
        response_status_code=a.response_status_code,
        response_duration_ms=a.response_duration_ms,
        status=int(a.status),
        status_text=a.status.text,
        trigger_type=int(a.trigger),
        timestamp=a.timestamp,
        msg=None if msg is None else message(msg, msg_content),
        fallback_for=a.fallback_for,
    )


def endpoint_message(pair: tuple[Message, Delivery], with_content: bool) -> s.EndpointMessageOut:
    msg, delivery = pair
    return s.EndpointMessageOut(
        **message(msg, with_content).model_dump(),
        status=int(delivery.status),
        status_text=delivery.status.text,
        next_attempt=delivery.next_attempt_at if delivery.status.text == "pending" else None,
        held=is_held(delivery),
    )


def message_endpoint(pair: tuple[Endpoint, Delivery]) -> s.MessageEndpointOut:
    ep, delivery = pair
    return s.MessageEndpointOut(
        id=ep.id,
        uid=ep.uid,
        url=ep.url,
        description=ep.description,
        throttle_rate=ep.throttle_rate,
        disabled=ep.disabled,
        event_types=_list(ep.event_types),
        channels=_list(ep.channels),
        created_at=ep.created_at,
        updated_at=ep.updated_at,
        status=int(delivery.status),
        status_text=delivery.status.text,
        next_attempt=delivery.next_attempt_at if delivery.status.text == "pending" else None,
        held=is_held(delivery),
    )


def stats(value: EndpointStats) -> s.EndpointStatsOut:
    return s.EndpointStatsOut(
        success=value.success,
        pending=value.pending,
        sending=value.sending,
        fail=value.fail,
        canceled=value.canceled,
        rate_limit=None if value.rate_limit is None else rate_limit(value.rate_limit),
        circuit=circuit(value.circuit),
    )


def attempt_stats(value: RollupSummary) -> s.EndpointAttemptStatsOut:
    outcomes = value.by_outcome()
    attempts = value.attempts
    return s.EndpointAttemptStatsOut(
        success=value.succeeded,
        fail=value.failed,
        canceled=0,
        outcomes=s.AttemptOutcomesOut.model_validate(outcomes),
        latency=s.AttemptLatencyOut(
            p50_ms=value.latency_percentile_ms(0.5),
            p90_ms=value.latency_percentile_ms(0.9),
            p99_ms=value.latency_percentile_ms(0.99),
            mean_ms=value.count("duration_ms") / attempts if attempts else None,
        ),
        payload_bytes=value.count("payload_bytes"),
    )


def rate_limit(state: RateLimitState) -> s.RateLimitOut:
    recovers = state.recovers_at
    return s.RateLimitOut(
        limit=state.limit,
        source=state.source,
        current_rate=state.current,
        recovers_at=None if recovers is None else datetime.fromtimestamp(recovers, UTC),
    )


def dump(model: Any) -> Any:
    return model.model_dump(mode="json", by_alias=True)


def background_task(task: BackgroundTask) -> s.BackgroundTaskOut:
    """In Svix's terms: a canceled task is ``failed`` and a redrive an ``endpoint.bulk-replay``."""
    return s.BackgroundTaskOut(
        id=task.id,
        status=task.status.wire,
        task=task.kind.wire,
        updated_at=task.updated_at,
        data=task_data(task),
    )


def audit_entry(entry: AuditEntry) -> s.AuditEntryOut:
    return s.AuditEntryOut(
        id=entry.id,
        timestamp=entry.created_at,
        actor=entry.actor,
        address=entry.address,
        action=entry.action,
        app_id=entry.app_id,
        target_id=entry.target_id,
        summary=dict(entry.summary),
    )


def anomaly(found: Anomaly) -> s.AnomalyOut:
    return s.AnomalyOut(
        id=found.id,
        kind=found.kind,
        scope=found.scope,
        app_id=found.app_id,
        endpoint_id=found.endpoint_id,
        detected_at=found.detected_at,
        last_seen_at=found.last_seen_at,
        resolved_at=found.resolved_at,
        observed=found.observed,
        expected=found.expected,
        unit=found.unit,
        baseline=found.basis,
        description=describe(found),
    )


def dead_letter(letter: DeadLetter) -> s.DeadLetterOut:
    return s.DeadLetterOut(
        id=letter.delivery_id or "",
        msg_id=letter.msg_id,
        endpoint_id=letter.endpoint_id or "",
        event_type=letter.event_type,
        channels=None if letter.channels is None else list(letter.channels),
        tags=None if letter.tags is None else list(letter.tags),
        timestamp=letter.created_at,
        attempt_count=letter.attempt_count,
        last_status_code=letter.last_status_code,
        failed_at=letter.updated_at or letter.created_at,
    )
