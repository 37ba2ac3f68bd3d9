"""Conversions between domain values and the plain column values both SQL backends use."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from hookline.domain import capabilities, ids, networks, ratelimit
from hookline.domain.anomaly import Anomaly, Counts, Point
from hookline.domain.audit import AuditEntry
from hookline.domain.breaker import CircuitState, Reason
from hookline.domain.endpoint_auth import EndpointAuth
from hookline.domain.failure_groups import (
    FailedAttempt,
    FailureGroup,
    GroupStatus,
    ResolvedBy,
    Sighting,
)
from hookline.domain.models import (
    AccessToken,
    Application,
    Attempt,
    AttemptTrigger,
    ClaimedDelivery,
    Delivery,
    Endpoint,
    EventType,
    Message,
    MessageStatus,
    SigningKey,
)
from hookline.domain.policy import ApplicationPolicy, EndpointPolicy
from hookline.domain.ratelimit import SlotGrant, SlotRequest, Slowdown
from hookline.domain.rollups import COUNT_COLUMNS, LATENCY_COLUMNS, Rollup, RollupBatch
from hookline.domain.routing import endpoint_accepts
from hookline.domain.search import DeliveryRow
from hookline.domain.tasks import BackgroundTask, TaskFilter, TaskKind, TaskRow, TaskStatus
from hookline.storage.base import (
    AttemptOutcome,
    Deferral,
    Diversion,
    EndpointFailure,
    FallbackDelivery,
    IdempotencyCompletion,
    IdempotentResponse,
)
from hookline.storage.codec import SECRET_COLUMNS, RowCodec

Row = Mapping[str, Any]


def to_ms(value: datetime | None) -> int | None:
    return None if value is None else dt_to_ms(value)


def dt_to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def from_ms(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value / 1000, tz=UTC)


def ms_to_dt(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def dump_json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def load_json(value: str | bytes | None) -> Any:
    return None if value is None else orjson.loads(value)


def application_policy_from(row: Row) -> ApplicationPolicy:
    return ApplicationPolicy.from_json(load_json(row["policy"]))


def endpoint_policy_from(row: Row) -> EndpointPolicy:
    return EndpointPolicy.from_json(load_json(row["policy"]))


def _policy_json(policy: dict[str, Any]) -> str | None:
    """An empty policy (inherit everything) is stored as NULL, as rows written before it."""
    return dump_json(policy) if policy else None


def _tuple(value: str | None) -> tuple[str, ...] | None:
    loaded = load_json(value)
    return None if loaded is None else tuple(loaded)


def application_params(app: Application) -> dict[str, Any]:
    return {
        "id": app.id,
        "uid": app.uid,
        "name": app.name,
        "throttle_rate": app.throttle_rate,
        "metadata": dump_json(app.metadata),
        "policy": _policy_json(app.policy.to_json()),
        "created_at": to_ms(app.created_at),
        "updated_at": to_ms(app.updated_at),
        "version": app.version,
    }


def application_from(row: Row) -> Application:
    return Application(
        id=row["id"],
        uid=row["uid"],
        name=row["name"],
        throttle_rate=row["throttle_rate"],
        metadata=load_json(row["metadata"]),
        created_at=ms_to_dt(row["created_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
        version=row["version"],
        policy=application_policy_from(row),
    )


def event_type_params(et: EventType) -> dict[str, Any]:
    return {
        "name": et.name,
        "description": et.description,
        "archived": int(et.archived),
        "deprecated": int(et.deprecated),
        "schemas": dump_json(et.schemas),
        "group_name": et.group_name,
        "feature_flags": dump_json(et.feature_flags),
        "created_at": to_ms(et.created_at),
        "updated_at": to_ms(et.updated_at),
        "version": et.version,
    }


def event_type_from(row: Row) -> EventType:
    return EventType(
        name=row["name"],
        description=row["description"],
        archived=bool(row["archived"]),
        deprecated=bool(row["deprecated"]),
        schemas=load_json(row["schemas"]),
        group_name=row["group_name"],
        feature_flags=_tuple(row["feature_flags"]),
        created_at=ms_to_dt(row["created_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
        version=row["version"],
    )


def endpoint_params(ep: Endpoint, codec: RowCodec) -> dict[str, Any]:
    """The endpoint's columns, its secrets encoded by ``codec``."""
    keys = [{"secret": k.secret, "expires_at": to_ms(k.expires_at)} for k in ep.keys]
    return {
        "id": ep.id,
        "app_id": ep.app_id,
        "uid": ep.uid,
        "url": ep.url,
        "description": ep.description,
        "throttle_rate": ep.throttle_rate,
        "disabled": int(ep.disabled),
        "event_types": dump_json(ep.event_types),
        "channels": dump_json(ep.channels),
        "metadata": dump_json(ep.metadata),
        "headers": codec.encode("endpoints", "headers", ep.id, orjson.dumps(ep.headers).decode()),
        "keys": codec.encode("endpoints", "keys", ep.id, orjson.dumps(keys).decode()),
        "auth": _auth_param(ep, codec),
        "policy": _policy_json(ep.policy.to_json()),
        "created_at": to_ms(ep.created_at),
        "updated_at": to_ms(ep.updated_at),
        "version": ep.version,
    }


def endpoint_from(row: Row, codec: RowCodec) -> Endpoint:
    """The endpoint of a row, its secrets decoded by ``codec``."""
    endpoint_id = row["id"]
    keys = tuple(
        SigningKey(secret=k["secret"], expires_at=from_ms(k["expires_at"]))
        for k in orjson.loads(codec.decode("endpoints", "keys", endpoint_id, row["keys"]))
    )
    return Endpoint(
        id=endpoint_id,
        app_id=row["app_id"],
        uid=row["uid"],
        url=row["url"],
        description=row["description"],
        throttle_rate=row["throttle_rate"],
        disabled=bool(row["disabled"]),
        event_types=_tuple(row["event_types"]),
        channels=_tuple(row["channels"]),
        metadata=load_json(row["metadata"]),
        headers=orjson.loads(codec.decode("endpoints", "headers", endpoint_id, row["headers"])),
        keys=keys,
        created_at=ms_to_dt(row["created_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
        version=row["version"],
        policy=endpoint_policy_from(row),
        failing_since=from_ms(_optional(row, "failing_since")),
        app_throttle_rate=_optional(row, "app_throttle_rate"),
        auth=_auth_from(row, codec),
    )


def _auth_param(ep: Endpoint, codec: RowCodec) -> str | None:
    """An endpoint's credentials, encoded whole; NULL (never sealed) when it has none, so an
    endpoint without credentials costs no decryption on a claim."""
    text = None if ep.auth is None else ep.auth.dumps()
    return None if text is None else codec.encode("endpoints", "auth", ep.id, text)


def _auth_from(row: Row, codec: RowCodec) -> EndpointAuth | None:
    stored = row["auth"]
    if stored is None:
        return None
    return EndpointAuth.loads(codec.decode("endpoints", "auth", row["id"], stored))


ENDPOINT_SECRETS = tuple(column for table, column in SECRET_COLUMNS if table == "endpoints")
"""The endpoint columns ``hookline rekey`` re-encodes (queries ``rekey_page``, ``rekey_write``)."""


def rekeyed_params(row: Row, codec: RowCodec) -> dict[str, Any] | None:
    """The ``rekey_write`` parameters that re-encode, with the codec's current key, each
    secret column of an endpoint's row that is stored otherwise; None if none is."""
    endpoint_id = row["id"]
    params: dict[str, Any] = {"id": endpoint_id, "version": row["version"]}
    stale = False
    for column in ENDPOINT_SECRETS:
        stored = row[column]
        params[f"old_{column}"] = params[column] = stored
        if stored is not None and not codec.current(stored):
            plain = codec.decode("endpoints", column, endpoint_id, stored)
            params[column] = codec.encode("endpoints", column, endpoint_id, plain)
            stale = True
    return params if stale else None


def endpoint_failure_from(row: Row) -> EndpointFailure:
    return EndpointFailure(
        endpoint_id=row["endpoint_id"],
        app_id=row["app_id"],
        endpoint_uid=row["uid"],
        failing_since=ms_to_dt(row["failing_since"]),
        step=row["step"],
    )


def _optional(row: Row, column: str) -> Any:
    """A column only some queries select (sqlite3 raises IndexError, asyncpg KeyError)."""
    try:
        return row[column]
    except (IndexError, KeyError):
        return None


def message_params(msg: Message) -> dict[str, Any]:
    return {
        "id": msg.id,
        "app_id": msg.app_id,
        "event_type": msg.event_type,
        "event_id": msg.event_id,
        "payload": msg.payload,
        "channels": dump_json(msg.channels),
        "tags": dump_json(msg.tags),
        "created_at": to_ms(msg.timestamp),
        "expires_at": to_ms(msg.expires_at),
        "deliver_at": to_ms(msg.deliver_at),
        "ordering_key": msg.ordering_key,
        "trace_context": msg.trace_context,
    }


def message_from(row: Row) -> Message:
    payload = row["payload"]
    return Message(
        id=row["id"],
        app_id=row["app_id"],
        event_type=row["event_type"],
        event_id=row["event_id"],
        payload=None if payload is None else bytes(payload),
        channels=_tuple(row["channels"]),
        tags=_tuple(row["tags"]),
        timestamp=ms_to_dt(row["created_at"]),
        expires_at=from_ms(row["expires_at"]),
        deliver_at=from_ms(row["deliver_at"]),
        ordering_key=row["ordering_key"],
        trace_context=row["trace_context"],
    )


def delivery_from(row: Row) -> Delivery:
    return Delivery(
        id=row["id"],
        app_id=row["app_id"],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        status=MessageStatus(row["status"]),
        attempt_count=row["attempt_count"],
        next_attempt_at=from_ms(row["next_attempt_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
    )


def attempt_params(attempt: Attempt) -> dict[str, Any]:
    return {
        "id": attempt.id,
        "app_id": attempt.app_id,
        "msg_id": attempt.msg_id,
        "endpoint_id": attempt.endpoint_id,
        "url": attempt.url,
        "status": int(attempt.status),
        "response_status_code": attempt.response_status_code,
        "response": attempt.response,
        "duration_ms": attempt.response_duration_ms,
        "trigger_type": int(attempt.trigger),
        "created_at": to_ms(attempt.timestamp),
    }


def rollup_params(outcomes: Sequence[AttemptOutcome]) -> list[dict[str, int | str]]:
    """The rollup rows a batch of attempts adds to (``domain/rollups.py``), aggregated here
    so that the batch writes one upsert per endpoint and period, not one per attempt."""
    batch = RollupBatch()
    for outcome in outcomes:
        payload = outcome.claimed.message.payload
        batch.add(outcome.attempt, None if payload is None else len(payload))
    return batch.rows()


def rollup_from(row: Any, period_seconds: int) -> Rollup:
    counts = tuple(int(row[column]) for column in COUNT_COLUMNS)
    return Rollup(ms_to_dt(int(row["start_at"])), period_seconds, counts)


def finish_params(outcome: AttemptOutcome) -> dict[str, Any]:
    """What an attempt's outcome writes to its delivery (only while its lease holds)."""
    return {
        "id": outcome.claimed.delivery_id,
        "lease_token": outcome.claimed.lease_token,
        "status": int(outcome.delivery_status),
        "attempt_count": outcome.scheduled_attempts,
        "next_attempt_at": to_ms(outcome.next_attempt_at),
        "now": to_ms(outcome.attempt.timestamp),
    }


def fallback_params(fallback: FallbackDelivery) -> dict[str, Any]:
    return {
        "id": fallback.id,
        "app_id": fallback.app_id,
        "msg_id": fallback.msg_id,
        "endpoint_id": fallback.endpoint_id,
        "fallback_for": fallback.fallback_for,
        "now": to_ms(fallback.now),
    }


def stood_in_params(outcome: AttemptOutcome) -> dict[str, Any]:
    """Marks an attempt at a fallback destination with the endpoint it stood in for."""
    return {"id": outcome.attempt.id, "fallback_for": outcome.attempt.fallback_for}


def divert_params(diversion: Diversion) -> dict[str, Any]:
    return {
        **fallback_params(diversion.fallback),
        "delivery_id": diversion.claimed.delivery_id,
        "lease_token": diversion.claimed.lease_token,
        "until": to_ms(diversion.until),
    }


def defer_params(deferral: Deferral, now: datetime) -> dict[str, Any]:
    return {
        "id": deferral.claimed.delivery_id,
        "lease_token": deferral.claimed.lease_token,
        "until": to_ms(deferral.until),
        "now": to_ms(now),
    }


def attempt_from(row: Row) -> Attempt:
    return Attempt(
        id=row["id"],
        app_id=row["app_id"],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        url=row["url"],
        status=MessageStatus(row["status"]),
        response_status_code=row["response_status_code"],
        response=row["response"],
        response_duration_ms=row["duration_ms"],
        trigger=AttemptTrigger(row["trigger_type"]),
        timestamp=ms_to_dt(row["created_at"]),
        fallback_for=row["fallback_for"],
    )


def claimed_from(
    leased: Sequence[Row],
    messages: Sequence[Row],
    endpoints: Sequence[Row],
    token: str,
    codec: RowCodec,
) -> list[ClaimedDelivery]:
    """Assemble what a worker needs from the claimed rows and their messages and endpoints."""
    by_msg = {r["id"]: message_from(r) for r in messages}
    by_endpoint = {r["id"]: endpoint_from(r, codec) for r in endpoints}
    return [
        ClaimedDelivery(
            delivery_id=r["id"],
            lease_token=token,
            attempt_count=r["attempt_count"],
            trigger=AttemptTrigger.MANUAL if r["manual"] else AttemptTrigger.SCHEDULED,
            message=by_msg[r["msg_id"]],
            endpoint=by_endpoint[r["endpoint_id"]],
            fallback_for=r["fallback_for"],
        )
        for r in leased
        if r["msg_id"] in by_msg and r["endpoint_id"] in by_endpoint
    ]


def route(endpoints: Sequence[Endpoint], msg: Message, only_endpoint: str | None) -> list[Endpoint]:
    """The endpoints a message goes to (the caller passes enabled ones only)."""
    return [
        ep
        for ep in endpoints
        if (only_endpoint is None or ep.id == only_endpoint)
        and endpoint_accepts(ep.event_types, ep.channels, msg.event_type, msg.channels)
    ]


def claim_params(
    limit: int, now: datetime, lease_until: datetime, worker_id: str, per_endpoint: int | None
) -> dict[str, Any]:
    """Parameters of a claim; the repository adds the busy endpoints (``busy``)."""
    return {
        "lease_token": uuid.uuid4().hex,
        "lease_until": to_ms(lease_until),
        "now": to_ms(now),
        "limit": limit,
        "worker_id": worker_id,
        "per_endpoint": per_endpoint or limit,
    }


def completion_params(completion: IdempotencyCompletion) -> dict[str, Any]:
    return {
        "scope": completion.scope,
        "key": completion.key,
        "status": completion.status,
        "body": completion.body,
    }


def idempotent_body(scope: str, key: str, body: bytes, codec: RowCodec) -> bytes:
    """The stored form of a response kept for an idempotency key, sealed by ``codec``: some
    responses carry a secret (a rotated signing secret). Latin-1 maps bytes to text and back
    unchanged, and sealed text is ASCII."""
    text = codec.encode("idempotency_keys", "body", f"{scope}/{key}", body.decode("latin-1"))
    return text.encode("latin-1")


def idempotent_response_from(row: Row, scope: str, key: str, codec: RowCodec) -> IdempotentResponse:
    body = row["body"]
    if body is not None:
        text = codec.decode(
            "idempotency_keys", "body", f"{scope}/{key}", bytes(body).decode("latin-1")
        )
        body = text.encode("latin-1")
    return IdempotentResponse(request_hash=row["request_hash"], status=row["status"], body=body)


def worker_params(worker_id: str, now: datetime) -> dict[str, Any]:
    """Where a worker runs, so an operator (or a test) can tell which process holds what."""
    return {
        "worker_id": worker_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "now": to_ms(now),
    }


def token_params(token: AccessToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "token_hash": token.token_hash,
        "app_id": token.app_id,
        "expires_at": to_ms(token.expires_at),
        "created_at": to_ms(token.created_at),
        "name": token.name,
        "capabilities": capabilities.encode(token.capabilities),
        "session_id": token.session_id,
        "configured": int(token.configured),
        "last_used_at": to_ms(token.last_used_at),
        "allowed_networks": networks.encode(token.allowed_networks),
    }


def token_from(row: Row) -> AccessToken:
    return AccessToken(
        id=row["id"],
        token_hash=row["token_hash"],
        app_id=row["app_id"],
        expires_at=from_ms(row["expires_at"]),
        created_at=ms_to_dt(row["created_at"]),
        name=row["name"],
        capabilities=capabilities.decode(row["capabilities"]),
        session_id=row["session_id"],
        configured=bool(row["configured"]),
        last_used_at=from_ms(row["last_used_at"]),
        allowed_networks=networks.decode(row["allowed_networks"]),
    )


def audit_params(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "created_at": dt_to_ms(entry.created_at),
        "actor": entry.actor,
        "actor_app_id": entry.actor_app_id,
        "address": entry.address,
        "action": entry.action,
        "app_id": entry.app_id,
        "target_id": entry.target_id,
        "summary": orjson.dumps(dict(entry.summary)).decode(),
    }


def audit_entry_from(row: Row) -> AuditEntry:
    return AuditEntry(
        id=row["id"],
        created_at=ms_to_dt(row["created_at"]),
        actor=row["actor"],
        address=row["address"],
        action=row["action"],
        app_id=row["app_id"],
        target_id=row["target_id"],
        summary=orjson.loads(row["summary"]),
        actor_app_id=row["actor_app_id"],
    )


def _delivery_from_joined(row: Any, msg_id: str, endpoint_id: str, app_id: str) -> Delivery:
    return Delivery(
        id=row["d_id"],
        app_id=app_id,
        msg_id=msg_id,
        endpoint_id=endpoint_id,
        status=MessageStatus(row["d_status"]),
        attempt_count=row["d_attempts"],
        next_attempt_at=from_ms(row["d_next"]),
        updated_at=ms_to_dt(row["d_updated"]),
    )


def message_with_delivery(row: Any) -> tuple[Message, Delivery]:
    msg = message_from(row)
    return msg, _delivery_from_joined(row, msg.id, row["d_ep"], msg.app_id)


def endpoint_with_delivery(row: Any, codec: RowCodec) -> tuple[Endpoint, Delivery]:
    ep = endpoint_from(row, codec)
    return ep, _delivery_from_joined(row, row["d_msg"], ep.id, ep.app_id)


def circuit_params(endpoint_id: str, state: CircuitState) -> dict[str, Any]:
    return {
        "endpoint_id": endpoint_id,
        "failures": state.failures,
        "open_until": int(state.open_until * 1000),
        "cooldown_ms": int(state.cooldown * 1000),
        "opened_at": int(state.opened_at * 1000),
        "failure_ratio": state.failure_ratio,
        "reason": state.reason.value,
    }


def circuit_from(row: Any) -> CircuitState:
    probe_until = row["probe_until"]
    return CircuitState(
        failures=row["failures"],
        open_until=row["open_until"] / 1000,
        cooldown=row["cooldown_ms"] / 1000,
        opened_at=row["opened_at"] / 1000,
        failure_ratio=row["failure_ratio"],
        reason=Reason(row["reason"]),
        probe_until=None if probe_until is None else probe_until / 1000,
    )


def task_filter_json(spec: TaskFilter) -> str:
    return orjson.dumps(
        {
            "since": dt_to_ms(spec.since),
            "until": dt_to_ms(spec.until),
            "endpointId": spec.endpoint_id,
            "eventTypes": None if spec.event_types is None else list(spec.event_types),
            "channel": spec.channel,
            "tag": spec.tag,
            "status": None if spec.status is None else int(spec.status),
            "statusCodeClass": spec.status_code_class,
            "failedSince": to_ms(spec.failed_since),
            "appIds": None if spec.app_ids is None else list(spec.app_ids),
            "statusCode": spec.status_code,
        }
    ).decode()


def task_result_json(result: Mapping[str, object]) -> str:
    return orjson.dumps(result).decode()


def task_filter_from(text: str) -> TaskFilter:
    raw = orjson.loads(text)
    return TaskFilter(
        since=ms_to_dt(raw["since"]),
        until=ms_to_dt(raw["until"]),
        endpoint_id=raw["endpointId"],
        event_types=None if raw["eventTypes"] is None else tuple(raw["eventTypes"]),
        channel=raw["channel"],
        tag=raw["tag"],
        status=None if raw["status"] is None else MessageStatus(raw["status"]),
        status_code_class=raw["statusCodeClass"],
        failed_since=from_ms(raw.get("failedSince")),
        app_ids=None if raw.get("appIds") is None else tuple(raw["appIds"]),
        status_code=raw.get("statusCode"),
    )


def task_params(task: BackgroundTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "app_id": task.app_id,
        "endpoint_id": task.endpoint_id,
        "task": task.kind.value,
        "status": task.status.value,
        "filter": task_filter_json(task.filter),
        "cursor": task.cursor,
        "created_at": dt_to_ms(task.created_at),
    }


def task_from(row: Row) -> BackgroundTask:
    return BackgroundTask(
        id=row["id"],
        app_id=row["app_id"],
        endpoint_id=row["endpoint_id"],
        kind=TaskKind(row["task"]),
        status=TaskStatus(row["status"]),
        filter=task_filter_from(row["filter"]),
        cursor=row["cursor"],
        scanned=int(row["scanned"]),
        queued=int(row["queued"]),
        error=row["error"],
        created_at=ms_to_dt(row["created_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
        result=None if row["result"] is None else orjson.loads(row["result"]),
    )


def task_row_from(row: Row, key: str) -> TaskRow:
    """A row of ``task_message_rows`` or ``page_delivery_rows``; ``key`` names the column
    the walk is ordered by."""
    status = row["status"]
    return TaskRow(
        key=row[key],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        delivery_id=row["delivery_id"],
        status=None if status is None else MessageStatus(status),
        attempt_count=int(row["attempts"]),
        updated_at=from_ms(row["updated_at"]),
        event_type=row["event_type"],
        channels=_tuple(row["channels"]),
        tags=_tuple(row["tags"]),
        created_at=ms_to_dt(row["created_at"]),
        last_status_code=row["last_code"],
        held=bool(_optional(row, "held")),
        has_content=_has_content(_optional(row, "content")),
    )


def _has_content(flag: Any) -> bool:
    """``task_content_rows``' flag; a row of another walk does not say, so it holds it."""
    return flag is None or bool(flag)


def to_us(dt: datetime) -> int:
    """Epoch microseconds: a rate limit's slots can be less than a millisecond apart."""
    return int(dt.timestamp() * 1_000_000)


def rate_slot_params(request: SlotRequest, now_us: int) -> dict[str, Any]:
    fresh_next, fresh_granted = ratelimit.fresh_grant(request, now_us)
    return {
        "endpoint_id": request.endpoint_id,
        "now": now_us,
        "reach": now_us + ratelimit.HORIZON_US,
        "interval": request.interval_us,
        "wanted": request.wanted,
        "fresh_next": fresh_next,
        "fresh_granted": fresh_granted,
    }


def slot_grant_from(row: Any, interval: int) -> SlotGrant:
    first, count = ratelimit.grant_from(row["next_slot"], row["granted"], interval)
    slowdown = slowdown_from(row) if row["slow_rate"] is not None else None
    return SlotGrant(first, count, interval, row["next_slot"], slowdown)


def slowdown_from(row: Any) -> Slowdown:
    return Slowdown(rate=row["slow_rate"], since=row["slowed_at"] / 1000)


def counts_from(row: Any, at: int) -> Counts:
    """Attempts, failures and duration buckets of a rollup row or a sum of rows, from the
    columns ``attempts``, ``success``, ``latency_0`` … ``latency_11`` in that order from
    position ``at`` (by position: a pass reads thousands; a sum may come back as decimals)."""
    attempts = int(row[at])
    latency = tuple(map(int, row[at + 2 : at + 2 + len(LATENCY_COLUMNS)]))
    return Counts(attempts, attempts - int(row[at + 1]), latency)


def rollup_point_from(row: Any) -> Point:
    """A ``rollup_points`` row: endpoint, application, start, then the counts."""
    return Point(row[0], row[1], ms_to_dt(row[2]), counts_from(row, 3))


def anomaly_params(anomaly: Anomaly) -> dict[str, Any]:
    return {
        "id": anomaly.id,
        "kind": anomaly.kind,
        "subject_id": anomaly.subject_key,
        "app_id": anomaly.app_id,
        "endpoint_id": anomaly.endpoint_id,
        "detected_at": dt_to_ms(anomaly.detected_at),
        "last_seen_at": dt_to_ms(anomaly.last_seen_at),
        "observed": anomaly.observed,
        "expected": anomaly.expected,
        "basis": anomaly.basis,
    }


def anomaly_from(row: Row) -> Anomaly:
    return Anomaly(
        id=row["id"],
        kind=row["kind"],
        app_id=row["app_id"],
        endpoint_id=row["endpoint_id"],
        detected_at=ms_to_dt(row["detected_at"]),
        last_seen_at=ms_to_dt(row["last_seen_at"]),
        resolved_at=from_ms(row["resolved_at"]),
        observed=float(row["observed"]),
        expected=float(row["expected"]),
        basis=row["basis"],
    )


def failed_attempt_from(row: Row) -> FailedAttempt:
    return FailedAttempt(
        id=row["id"],
        app_id=row["app_id"],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        status_code=int(row["response_status_code"]),
        response=row["response"],
        at=ms_to_dt(row["created_at"]),
    )


def sighting_params(sighting: Sighting) -> dict[str, Any]:
    return {
        "id": ids.new_id(ids.FAILURE_GROUP),
        "app_id": sighting.app_id,
        "endpoint_id": sighting.endpoint_id,
        "outcome": sighting.outcome,
        "status_code": sighting.status_code,
        "first_at": dt_to_ms(sighting.first_at),
        "last_at": dt_to_ms(sighting.last_at),
        "attempts": sighting.attempts,
        "messages": sighting.messages,
        "sample": sighting.sample,
    }


def failure_group_from(row: Row) -> FailureGroup:
    return FailureGroup(
        id=row["id"],
        app_id=row["app_id"],
        endpoint_id=row["endpoint_id"],
        outcome=row["outcome"],
        status_code=int(row["status_code"]),
        status=GroupStatus(row["status"]),
        first_seen_at=ms_to_dt(row["first_seen_at"]),
        opened_at=ms_to_dt(row["opened_at"]),
        last_seen_at=ms_to_dt(row["last_seen_at"]),
        attempts=int(row["attempts"]),
        messages=int(row["messages"]),
        sample=row["sample"],
        acknowledged_at=from_ms(row["acknowledged_at"]),
        resolved_at=from_ms(row["resolved_at"]),
        resolved_by=None if row["resolved_by"] is None else ResolvedBy(row["resolved_by"]),
        reopened=int(row["reopened"]),
    )


def delivery_row_from(row: Row, last_status_code: int | None) -> DeliveryRow:
    """A deliveries search's row (``search_deliveries``: the delivery and its message's
    event type and time)."""
    return DeliveryRow(
        id=row["id"],
        app_id=row["app_id"],
        msg_id=row["msg_id"],
        endpoint_id=row["endpoint_id"],
        event_type=row["event_type"],
        status=MessageStatus(row["status"]),
        attempt_count=row["attempt_count"],
        next_attempt_at=from_ms(row["next_attempt_at"]),
        updated_at=ms_to_dt(row["updated_at"]),
        timestamp=ms_to_dt(row["created_at"]),
        last_status_code=last_status_code,
    )
