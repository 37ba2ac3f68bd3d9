"""Messages: publishing, reading and expunging them, and sending an example.

A publish returns only after the message and its delivery rows are committed, so an
accepted message is never lost (DESIGN.md, "The store is the queue"). It is the hot path
(thousands per second): one input object, the cached application, one store call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from hookline.domain import audit as a
from hookline.domain import ids
from hookline.domain import validation as v
from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.models import Application, EventType, Message, Page
from hookline.domain.scheduling import check_deliver_at
from hookline.domain.tracecontext import TraceContext
from hookline.instrumentation import MessageAccepted
from hookline.operations import applications, endpoints, event_types, inputs
from hookline.operations.applications import NewApplication
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import IdempotencyCompletion, ListQuery, MessageFilter

DEFAULT_RETENTION_DAYS = 90

Completion = Callable[[Message], IdempotencyCompletion]
"""Renders the response to a publish, for the idempotency record committed with it."""


@dataclass(slots=True)
class NewMessage:
    """A message to publish. Not frozen, unlike the other inputs: it is built on every
    publish, and a frozen dataclass's ``__init__`` costs about 2 µs more (it sets each field
    through ``object.__setattr__``); operations never change their inputs."""

    event_type: str
    payload: Mapping[str, Any]
    event_id: str | None = None
    channels: Sequence[str] | None = None
    tags: Sequence[str] | None = None
    application: NewApplication | None = None
    """Created under the path's key when the application is missing (admins only)."""
    retention_days: int | None = None
    retention_hours: int | None = None
    deliver_at: datetime | None = None
    ordering_key: str | None = None
    """Order is kept per key on an ordered endpoint (``domain/ordering.py``)."""
    trace_context: TraceContext | None = None
    """The producer's W3C trace context (its ``traceparent`` header), kept with the message
    when hookline records no spans of its own, so attempts can still forward it."""


def retention(new: NewMessage) -> timedelta:
    """How long the payload is kept: days or hours (not both), 90 days by default."""
    if new.retention_days is not None and new.retention_hours is not None:
        raise InvalidRequest(
            "payloadRetentionPeriod and payloadRetentionHours are mutually exclusive",
            loc=("body", "payloadRetentionHours"),
        )
    if new.retention_hours is not None:
        return timedelta(hours=new.retention_hours)
    return timedelta(days=new.retention_days or DEFAULT_RETENTION_DAYS)


def encode_payload(payload: Mapping[str, Any]) -> bytes:
    """The payload as stored and sent, or a 422 naming ``payload`` when JSON cannot carry
    it faithfully (``domain.validation.json_problem``).

    orjson refuses integers beyond 64 bits and writes NaN and infinities as ``null``, so
    the full walk runs only when its output holds a ``null``: the hot path pays one scan.
    """
    try:
        encoded = orjson.dumps(payload)
    except orjson.JSONEncodeError as exc:
        why = v.json_problem(payload) or str(exc)
        raise InvalidRequest(f"payload: {why}", loc=("body", "payload")) from None
    if b"null" in encoded:
        problem = v.json_problem(payload)
        if problem is not None:
            raise InvalidRequest(f"payload: {problem}", loc=("body", "payload"))
    return encoded


def check_new(new: NewMessage) -> None:
    """The rules of a message's names, for faces that do not check them first."""
    inputs.key(("body", "eventType"), new.event_type, "eventType")
    inputs.optional_key(("body", "eventId"), new.event_id, "eventId")
    for tag in new.tags or ():
        inputs.valid(("body", "tags"), v.check_tag, tag)


def build_message(
    app: Application, new: NewMessage, now: datetime, trace: TraceContext | None = None
) -> Message:
    deliver_at = inputs.time(("body", "deliverAt"), new.deliver_at)
    trace = trace or new.trace_context
    return Message(
        id=ids.new_id(ids.MESSAGE),
        app_id=app.id,
        event_type=new.event_type,
        event_id=new.event_id,
        payload=encode_payload(new.payload),
        channels=tuple(new.channels) if new.channels else None,
        tags=tuple(new.tags) if new.tags else None,
        timestamp=now,
        expires_at=now + retention(new),
        deliver_at=None if deliver_at is None else check_deliver_at(deliver_at, now),
        ordering_key=new.ordering_key,
        trace_context=None if trace is None else trace.stored(),
    )


async def publish(
    ops: Operations,
    principal: Principal,
    app_key: str,
    new: NewMessage,
    completion: Completion | None = None,
) -> Message:
    """Store the message with one delivery per matching endpoint, in one transaction.

    ``completion`` renders the response recorded for an idempotency key in that same
    transaction, so a retry after a lost acknowledgement replays it instead of publishing
    twice.
    """
    check_new(new)
    if new.application is None:
        app = await applications.resolve(ops, principal, app_key)
    else:
        app = await applications.resolve_or_create(ops, principal, app_key, new.application)
    if ops.tracing is not None:
        return await _traced_publish(ops, app, new, completion)
    msg = build_message(app, new, ops.clock())
    routed = await ops.store.publish(
        [msg], ops.clock(), completion=None if completion is None else completion(msg)
    )
    if msg.deliver_at is not None and routed[0]:
        ops.work_due(msg.deliver_at)
    if ops.accepted_heard:
        ops.instrumentation.emit(_accepted(msg, len(routed[0])))
    return msg


async def _traced_publish(
    ops: Operations, app: Application, new: NewMessage, completion: Completion | None
) -> Message:
    """``publish`` inside a publish span, whose context the message keeps: its attempts are
    the span's children, in the request's trace (the producer's, if it sent one)."""
    assert ops.tracing is not None
    span = ops.tracing.publish(app.id, new.event_type)
    msg: Message | None = None
    try:
        msg = build_message(app, new, ops.clock(), span.context())
        routed = await ops.store.publish(
            [msg], ops.clock(), completion=None if completion is None else completion(msg)
        )
    except BaseException as exc:
        span.finish(None if msg is None else msg.id, 0, type(exc).__name__)
        raise
    span.finish(msg.id, len(routed[0]), None)
    if msg.deliver_at is not None and routed[0]:
        ops.work_due(msg.deliver_at)
    if ops.accepted_heard:
        ops.instrumentation.emit(_accepted(msg, len(routed[0])))
    return msg


def _accepted(msg: Message, deliveries: int) -> MessageAccepted:
    size = 0 if msg.payload is None else len(msg.payload)
    return MessageAccepted(msg.app_id, msg.id, msg.event_type, size, deliveries)


async def send_example(
    ops: Operations,
    principal: Principal,
    app_key: str,
    endpoint_key: str,
    event_type_name: str,
    example_index: int = 0,
) -> Message:
    """Publish the event type's schema example (or a stub) to this one endpoint."""
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await endpoints.in_application(ops, app, endpoint_key)
    try:
        event_type = await event_types.get(ops, principal, event_type_name)
    except NotFound:
        raise InvalidRequest(
            f"Unknown event type: {event_type_name}", loc=("body", "eventType")
        ) from None
    new = NewMessage(event_type=event_type.name, payload=example_payload(event_type, example_index))
    msg = build_message(app, new, ops.clock())
    await ops.store.publish([msg], ops.clock(), only_endpoint=endpoint.id)
    summary = {"endpointId": endpoint.id, "eventType": event_type.name}
    await record(ops, principal, a.EXAMPLE_SENT, app_id=app.id, target_id=msg.id, summary=summary)
    return msg


def example_payload(event_type: EventType, index: int) -> dict[str, Any]:
    """The ``index``-th example of the first schema that has one, else a stub naming the type."""
    for schema in (event_type.schemas or {}).values():
        examples = schema.get("examples") if isinstance(schema, dict) else None
        if (
            isinstance(examples, list)
            and len(examples) > index
            and isinstance(examples[index], dict)
        ):
            return dict(examples[index])
    return {"type": event_type.name, "example": True}


async def get(ops: Operations, principal: Principal, app_key: str, key: str) -> Message:
    """A message by id or eventId."""
    app = await applications.resolve(ops, principal, app_key)
    return await in_application(ops, app, key)


async def in_application(ops: Operations, app: Application, key: str) -> Message:
    """A message of an application the caller already resolved (and may see)."""
    msg = await ops.store.get_message(app.id, key)
    if msg is None:
        raise NotFound("Message not found")
    return msg


async def list_messages(
    ops: Operations, principal: Principal, app_key: str, query: ListQuery, filters: MessageFilter
) -> Page[Message]:
    app = await applications.resolve(ops, principal, app_key)
    return await ops.store.list_messages(app.id, query, filters)


async def expunge_content(ops: Operations, principal: Principal, app_key: str, key: str) -> None:
    """Delete the payload now; the message and its attempts stay listed."""
    app = await applications.resolve(ops, principal, app_key)
    msg = await in_application(ops, app, key)
    await ops.store.expunge_message_content(app.id, msg.id)
    await record(ops, principal, a.MESSAGE_CONTENT_EXPUNGED, app_id=app.id, target_id=msg.id)
