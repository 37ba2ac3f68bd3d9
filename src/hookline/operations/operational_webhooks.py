"""Operational webhooks: the operator's own endpoints, told what happens to everyone else's.

Design: an operational-webhook endpoint is an ordinary endpoint of one reserved, hidden
application (``OPERATIONAL_APP_ID``), and each operational event is an ordinary message
published to it. So these webhooks are stored, signed, retried, leased and held by the
breaker exactly as customers' are, and every endpoint rule (URL, secret, headers, rotation,
versioned updates) is the one in ``operations.endpoints``. The application is created on
first use; ``applications.resolve`` and the application list never show it, so no route
under ``/api/v1/app`` and no application-scoped token reaches it. Only admins manage these
endpoints: they see every application's events.

``OperationalPublisher`` is the instrumentation hook that turns events into those messages.
It runs inline on the event loop, so it only queues; ``run`` publishes what queued in
batches, and only while at least one operational endpoint exists. Events about the reserved
application itself are dropped, so an operational webhook that fails never reports on
itself (no loop).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from datetime import datetime, timedelta
from typing import Any

import orjson

from hookline.domain import ids, operational
from hookline.domain.anomaly import describe
from hookline.domain.errors import Conflict, HooklineError
from hookline.domain.headers import redacted
from hookline.domain.models import Application, Endpoint, Message, Page
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.instrumentation import (
    AnomalyDetected,
    AnomalyResolved,
    AttemptMilestone,
    BackgroundTaskFinished,
    BreakerClosed,
    BreakerOpened,
    EndpointCreated,
    EndpointDeleted,
    EndpointDisabled,
    EndpointEnabled,
    EndpointFailing,
    EndpointUpdated,
    Event,
    FailureGroupOpened,
)
from hookline.operations import endpoints
from hookline.operations.context import Operations
from hookline.operations.endpoints import EndpointFields
from hookline.operations.messages import DEFAULT_RETENTION_DAYS
from hookline.operations.principal import Principal
from hookline.operations.queues import queued_or_stopped
from hookline.storage.base import ListQuery

log = logging.getLogger("hookline.operational")

PUBLISH_BATCH = 500
MAX_QUEUED = 10_000
"""Events held while the store is slow; beyond it new ones are dropped (and said once)."""
SUBSCRIBERS_TTL_SECONDS = 5.0
"""How long the answer to "is any operational endpoint there?" is trusted."""
RETENTION = timedelta(days=DEFAULT_RETENTION_DAYS)


async def _reserved_app(ops: Operations, principal: Principal) -> Application:
    """The reserved application, created on first use (two creators race harmlessly)."""
    principal.require_admin()
    found = await ops.store.get_application(OPERATIONAL_APP_ID)
    if found is not None:
        return found
    now = ops.clock()
    app = Application(
        id=OPERATIONAL_APP_ID,
        name="hookline operational webhooks",
        uid=None,
        throttle_rate=None,
        metadata={},
        created_at=now,
        updated_at=now,
    )
    with contextlib.suppress(Conflict):
        await ops.store.create_application(app)
    return app


async def list_endpoints(ops: Operations, principal: Principal, query: ListQuery) -> Page[Endpoint]:
    principal.require_admin()
    return await ops.store.list_endpoints(OPERATIONAL_APP_ID, query)


async def create(ops: Operations, principal: Principal, given: EndpointFields) -> Endpoint:
    return await endpoints.create_in(ops, principal, await _reserved_app(ops, principal), given)


async def get(ops: Operations, principal: Principal, key: str) -> Endpoint:
    return await endpoints.in_application(ops, await _reserved_app(ops, principal), key)


async def upsert(
    ops: Operations, principal: Principal, key: str, given: EndpointFields
) -> tuple[Endpoint, bool]:
    return await endpoints.upsert_in(
        ops, principal, await _reserved_app(ops, principal), key, given
    )


async def delete(ops: Operations, principal: Principal, key: str) -> None:
    await endpoints.delete_in(ops, principal, await _reserved_app(ops, principal), key)


async def secret(ops: Operations, principal: Principal, key: str) -> str:
    return (await get(ops, principal, key)).current_key.secret


async def rotate_secret(
    ops: Operations, principal: Principal, key: str, new_secret: str | None, grace_seconds: int
) -> str:
    app = await _reserved_app(ops, principal)
    grace = timedelta(seconds=grace_seconds)
    return await endpoints.rotate_secret_in(ops, principal, app, key, new_secret, grace)


async def headers(
    ops: Operations, principal: Principal, key: str
) -> tuple[dict[str, str], list[str]]:
    return redacted((await get(ops, principal, key)).headers)


async def set_headers(
    ops: Operations, principal: Principal, key: str, given: dict[str, str]
) -> Endpoint:
    return await endpoints.set_headers_in(
        ops, principal, await _reserved_app(ops, principal), key, given
    )


_ENDPOINT_EVENTS: dict[type[Event], str] = {
    EndpointCreated: operational.ENDPOINT_CREATED,
    EndpointUpdated: operational.ENDPOINT_UPDATED,
    EndpointDeleted: operational.ENDPOINT_DELETED,
    EndpointEnabled: operational.ENDPOINT_ENABLED,
}


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


class OperationalPublisher:
    """Hears endpoint, breaker, attempt, background-task and anomaly events; publishes them as
    operational webhooks (``run``). Never blocks the emitter and never raises into it.

    A circuit that re-opens after a failed probe is still the same outage: only the first
    opening is published, so a dead endpoint makes two webhooks (opened, closed), not one per
    probe."""

    events: frozenset[type[Event]] = frozenset(
        {
            AnomalyDetected,
            AnomalyResolved,
            AttemptMilestone,
            BackgroundTaskFinished,
            BreakerClosed,
            BreakerOpened,
            EndpointCreated,
            EndpointDeleted,
            EndpointDisabled,
            EndpointEnabled,
            EndpointFailing,
            EndpointUpdated,
            FailureGroupOpened,
        }
    )

    def __init__(self) -> None:
        self._queue: deque[Event] = deque()
        self._queued = asyncio.Event()
        self._dropping = False
        self._subscribed_until = float("-inf")
        self._subscribed = False

    def __call__(self, event: Event) -> None:
        if isinstance(event, BreakerOpened) and event.reopened:
            return
        if getattr(event, "app_id", None) == OPERATIONAL_APP_ID:
            if isinstance(event, EndpointCreated):
                self._subscribed_until = float("-inf")  # ask the store again
            return
        if len(self._queue) >= MAX_QUEUED:
            if not self._dropping:
                log.warning("operational webhooks are behind: dropping events")
                self._dropping = True
            return
        self._dropping = False
        self._queue.append(event)
        self._queued.set()

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Publish what queues until ``stop``, then what is left."""
        while not stop.is_set():
            await queued_or_stopped(self._queued, stop)
            await self.flush(ops)
        await self.flush(ops)

    async def flush(self, ops: Operations) -> int:
        """Publish everything queued now; return how many messages were published. A store
        that refuses is logged and the batch dropped: the events are advisory."""
        published = 0
        self._queued.clear()
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(PUBLISH_BATCH, len(self._queue)))]
            try:
                published += await self._publish(ops, batch)
            except (HooklineError, OSError) as exc:
                log.warning("could not publish %d operational webhooks: %s", len(batch), exc)
            except Exception:
                log.exception("could not publish %d operational webhooks", len(batch))
        return published

    async def _has_subscribers(self, ops: Operations) -> bool:
        loop = asyncio.get_running_loop()
        if loop.time() >= self._subscribed_until:
            found = await ops.store.list_endpoints(OPERATIONAL_APP_ID, ListQuery(limit=1))
            self._subscribed = bool(found.data)
            self._subscribed_until = loop.time() + SUBSCRIBERS_TTL_SECONDS
        return self._subscribed

    async def _publish(self, ops: Operations, batch: list[Event]) -> int:
        if not await self._has_subscribers(ops):
            return 0
        now = ops.clock()
        uids: dict[str, str | None] = {}
        messages: list[Message] = []
        for event in batch:
            app_id = getattr(event, "app_id", None)
            if app_id is not None and app_id not in uids:
                found = await ops.store.get_application(app_id)
                uids[app_id] = None if found is None else found.uid
            body = _body(event, None if app_id is None else uids.get(app_id))
            if body is not None:
                messages.append(_message(body, now))
        if messages:
            await ops.store.publish(messages, now)
            ops.work_queued()
        return len(messages)


def _message(body: dict[str, Any], now: datetime) -> Message:
    return Message(
        id=ids.new_id(ids.MESSAGE),
        app_id=OPERATIONAL_APP_ID,
        event_type=body["type"],
        event_id=None,
        payload=orjson.dumps(body),
        channels=None,
        tags=None,
        timestamp=now,
        expires_at=now + RETENTION,
    )


def _body(event: Event, app_uid: str | None) -> dict[str, Any] | None:
    """The Svix payload of an event, or None for an event that makes no webhook."""
    match event:
        case AttemptMilestone():
            attempt = {
                "id": event.attempt_id,
                "responseStatusCode": event.status_code,
                "timestamp": _iso(event.started_at),
            }
            data = operational.attempt_data(
                event.app_id, app_uid, event.msg_id, event.msg_event_id, event.endpoint_id, attempt
            )
            return operational.envelope(event.kind, data)
        case EndpointDisabled():
            data = operational.endpoint_data(
                event.app_id, app_uid, event.endpoint_id, event.endpoint_uid
            )
            data["failSince"] = None if event.fail_since is None else _iso(event.fail_since)
            data["trigger"] = event.trigger
            return operational.envelope(operational.ENDPOINT_DISABLED, data)
        case EndpointFailing():
            data = operational.endpoint_data(
                event.app_id, app_uid, event.endpoint_id, event.endpoint_uid
            )
            data["failSince"] = _iso(event.fail_since)
            data["disableAt"] = _iso(event.disable_at)
            return operational.envelope(operational.ENDPOINT_FAILING, data)
        case BreakerOpened():
            data = operational.endpoint_data(
                event.app_id, app_uid, event.endpoint_id, event.endpoint_uid
            )
            data["reason"] = event.reason
            data["consecutiveFailures"] = event.failures
            data["failureRatio"] = event.failure_ratio
            data["probeAt"] = None if event.probe_at is None else _iso(event.probe_at)
            return operational.envelope(operational.ENDPOINT_CIRCUIT_OPENED, data)
        case BreakerClosed():
            data = operational.endpoint_data(
                event.app_id, app_uid, event.endpoint_id, event.endpoint_uid
            )
            return operational.envelope(operational.ENDPOINT_CIRCUIT_CLOSED, data)
        case BackgroundTaskFinished():
            data = {
                "taskId": event.task_id,
                "task": event.task,
                "status": event.status,
                "data": event.data,
            }
            return operational.envelope(operational.BACKGROUND_TASK_FINISHED, data)
        case AnomalyDetected():
            return operational.envelope(
                operational.ANOMALY_PREFIX + event.anomaly.kind, _anomaly_data(event, app_uid)
            )
        case AnomalyResolved():
            return operational.envelope(operational.ANOMALY_RESOLVED, _anomaly_data(event, app_uid))
        case FailureGroupOpened():
            return operational.envelope(
                operational.FAILURE_GROUP_OPENED, _failure_group_data(event, app_uid)
            )
        case EndpointCreated() | EndpointUpdated() | EndpointDeleted() | EndpointEnabled():
            data = operational.endpoint_data(
                event.app_id, app_uid, event.endpoint_id, event.endpoint_uid
            )
            return operational.envelope(_ENDPOINT_EVENTS[type(event)], data)
    return None


def _failure_group_data(event: FailureGroupOpened, app_uid: str | None) -> dict[str, Any]:
    """Where and what fails, as counts and ids; not the sample of the receiver's answer
    (the group's API shows it to whoever may read the application)."""
    group = event.group
    return {
        "failureGroupId": group.id,
        "appId": group.app_id,
        "appUid": app_uid,
        "endpointId": group.endpoint_id,
        "outcome": group.outcome,
        "statusCode": group.status_code or None,
        "attempts": group.attempts,
        "messages": group.messages,
        "openedAt": _iso(group.opened_at),
        "reopened": group.reopened,
    }


def _anomaly_data(event: AnomalyDetected | AnomalyResolved, app_uid: str | None) -> dict[str, Any]:
    found = event.anomaly
    resolved = found.resolved_at
    return {
        "anomalyId": found.id,
        "kind": found.kind,
        "scope": found.scope,
        "appId": found.app_id,
        "appUid": app_uid,
        "endpointId": found.endpoint_id,
        "observed": found.observed,
        "expected": found.expected,
        "unit": found.unit,
        "baseline": found.basis,
        "detectedAt": _iso(found.detected_at),
        "resolvedAt": None if resolved is None else _iso(resolved),
        "description": describe(found),
    }
