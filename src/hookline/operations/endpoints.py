"""Endpoints: where an application's messages go, how they are signed, what they carry.

Every operation here is open to the application's own portal token as well as to admins;
the application is resolved with tenant isolation first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from hookline.domain import audit as a
from hookline.domain import breaker, ids, ratelimit
from hookline.domain import validation as v
from hookline.domain.breaker import CircuitView
from hookline.domain.errors import Conflict, InvalidRequest, NotFound
from hookline.domain.headers import InvalidHeader, merge_headers, normalize_headers, redacted
from hookline.domain.models import Application, Endpoint, EndpointStats, Page, SigningKey
from hookline.domain.operational import OPERATIONAL_APP_ID, unknown_event_types
from hookline.domain.policy import NO_ENDPOINT_POLICY, EndpointPolicy
from hookline.domain.rotation import rotate_keys
from hookline.domain.signing import InvalidSecret, generate_secret, normalize_secret
from hookline.domain.ssrf import destination_reason
from hookline.instrumentation import (
    EndpointCreated,
    EndpointDeleted,
    EndpointDisabled,
    EndpointEnabled,
    EndpointUpdated,
)
from hookline.operations import applications, inputs
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import SYSTEM, Principal
from hookline.operations.updates import (
    UNSET,
    Unset,
    changed_fields,
    update_with_retry,
)
from hookline.storage.base import EndpointFailure, ListQuery

DEFAULT_GRACE = timedelta(hours=24)
MAX_GRACE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class EndpointFields:
    """Every field a POST sets and a PUT replaces."""

    url: str
    description: str = ""
    throttle_rate: int | None = None
    uid: str | None = None
    disabled: bool = False
    event_types: Sequence[str] | None = None
    channels: Sequence[str] | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    secret: str | None = None
    """The first signing secret, generated when None; an update keeps the keys (rotate them)."""
    headers: Mapping[str, str] | None = None
    """The first custom headers; an update keeps them (``set_headers`` replaces them)."""
    policy: EndpointPolicy = NO_ENDPOINT_POLICY


@dataclass(frozen=True, slots=True)
class EndpointPatch:
    """A PATCH: url, description, disabled and metadata cannot be set to None (kept)."""

    url: str | Unset | None = UNSET
    description: str | Unset | None = UNSET
    throttle_rate: int | Unset | None = UNSET
    uid: str | Unset | None = UNSET
    disabled: bool | Unset | None = UNSET
    event_types: Sequence[str] | Unset | None = UNSET
    channels: Sequence[str] | Unset | None = UNSET
    metadata: Mapping[str, str] | Unset | None = UNSET
    policy: EndpointPolicy | Unset | None = UNSET
    """None goes back to inheriting the application's and the server's policy."""


@dataclass(frozen=True, slots=True)
class HeadersPatch:
    """Headers to add or overwrite, and names to remove (case-insensitive)."""

    headers: Mapping[str, str] = field(default_factory=dict)
    delete: Sequence[str] = ()


def check_fields(given: EndpointFields) -> None:
    """The rules every endpoint's fields obey, on create and on PUT alike."""
    inputs.valid(("body", "url"), v.check_url, given.url)
    inputs.valid(("body", "description"), v.check_description, given.description)
    if given.throttle_rate is not None:
        inputs.valid(("body", "throttleRate"), v.check_throttle_rate, given.throttle_rate)
    inputs.optional_key(("body", "uid"), given.uid)
    inputs.keys(("body", "filterTypes"), given.event_types, "each event type")
    _headers(given.headers)


def check_patch(patch: EndpointPatch) -> None:
    if isinstance(patch.url, str):
        inputs.valid(("body", "url"), v.check_url, patch.url)
    if isinstance(patch.description, str):
        inputs.valid(("body", "description"), v.check_description, patch.description)
    if isinstance(patch.throttle_rate, int):
        inputs.valid(("body", "throttleRate"), v.check_throttle_rate, patch.throttle_rate)
    if isinstance(patch.uid, str):
        inputs.key(("body", "uid"), patch.uid)
    if not isinstance(patch.event_types, Unset):
        inputs.keys(("body", "filterTypes"), patch.event_types, "each event type")


def _secret(value: str | None) -> str:
    if value is None:
        return generate_secret()
    try:
        return normalize_secret(value)
    except InvalidSecret as exc:
        raise InvalidRequest(str(exc), loc=("body", "secret")) from exc


def _headers(value: Mapping[str, str] | None) -> dict[str, str]:
    try:
        return normalize_headers(value or {})
    except InvalidHeader as exc:
        raise InvalidRequest(str(exc), loc=("body", "headers")) from exc


def _checked_url(ops: Operations, url: str) -> None:
    """The operator's destination rules (https only, destination ports), applied to every
    way a URL is set: create, upsert, patch, and operational-webhook endpoints, which go
    through the same functions."""
    reason = destination_reason(url, https_only=ops.endpoint_https_only, ports=ops.ports)
    if reason is not None:
        raise InvalidRequest(f"url {reason}", loc=("body", "url"))


def _nonempty(value: Sequence[str] | None) -> tuple[str, ...] | None:
    """Lists are stored as tuples, and an empty one as None (Svix: "no filter")."""
    return tuple(value) if value else None


async def _event_types(
    ops: Operations, app: Application, names: Sequence[str] | None
) -> tuple[str, ...] | None:
    """A filter naming an unknown event type would silently receive nothing: refuse it. An
    operational-webhook endpoint filters on hookline's own event types, not the catalogue."""
    if not names:
        return None
    if app.id == OPERATIONAL_APP_ID:
        unknown = unknown_event_types(tuple(names))
        if unknown:
            raise InvalidRequest(
                f"Unknown operational event type(s): {_some(unknown)}; see "
                "docs/delivery.md, 'Operational webhooks and auto-disable'",
                loc=("body", "filterTypes"),
            )
        return tuple(dict.fromkeys(names))
    missing = await ops.store.missing_event_types(list(names))
    if missing:
        raise InvalidRequest(
            f"Unknown event type(s): {_some(missing)}; create them first with "
            "POST /api/v1/event-type",
            loc=("body", "filterTypes"),
        )
    return tuple(dict.fromkeys(names))


SHOWN_NAMES = 10
"""Names an error lists before it says how many more there are: a filter of 20,000
unknown names must not make a 422 of hundreds of kilobytes."""


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:SHOWN_NAMES])
    more = len(names) - SHOWN_NAMES
    return shown if more <= 0 else f"{shown} and {more} more"


def new_endpoint(
    app: Application,
    given: EndpointFields,
    event_types: tuple[str, ...] | None,
    now: datetime,
    uid: str | None = None,
) -> Endpoint:
    """A fresh endpoint; ``event_types`` is the filter already checked against the catalogue,
    ``uid`` the fallback when the input names none (PUT's path)."""
    return Endpoint(
        id=ids.new_id(ids.ENDPOINT),
        app_id=app.id,
        url=given.url,
        uid=given.uid if given.uid is not None else uid,
        description=given.description,
        throttle_rate=given.throttle_rate,
        disabled=given.disabled,
        event_types=event_types,
        channels=_nonempty(given.channels),
        metadata=dict(given.metadata),
        headers=_headers(given.headers),
        keys=(SigningKey(_secret(given.secret)),),
        created_at=now,
        updated_at=now,
        policy=given.policy,
    )


def replace_endpoint(
    existing: Endpoint, given: EndpointFields, event_types: tuple[str, ...] | None, now: datetime
) -> Endpoint:
    """PUT on an existing endpoint: every field from the input; keys and headers kept."""
    return replace(
        existing,
        url=given.url,
        uid=given.uid if given.uid is not None else existing.uid,
        description=given.description,
        throttle_rate=given.throttle_rate,
        disabled=given.disabled,
        event_types=event_types,
        channels=_nonempty(given.channels),
        metadata=dict(given.metadata),
        policy=given.policy,
        updated_at=now,
    )


def patch_endpoint(existing: Endpoint, patch: EndpointPatch, now: datetime) -> Endpoint:
    """``patch.event_types``, when set, must already be checked (see ``_event_types``)."""
    changes = changed_fields(patch, required=("url", "description", "disabled", "metadata"))
    if "event_types" in changes:
        changes["event_types"] = _nonempty(changes["event_types"])
    if "channels" in changes:
        changes["channels"] = _nonempty(changes["channels"])
    if "metadata" in changes:
        changes["metadata"] = dict(changes["metadata"])
    if changes.get("policy", NO_ENDPOINT_POLICY) is None:
        changes["policy"] = NO_ENDPOINT_POLICY
    return replace(existing, **changes, updated_at=now)


def patch_headers(existing: Endpoint, patch: HeadersPatch, now: datetime) -> Endpoint:
    """Merge the headers in and drop the named ones, matching names in any case."""
    try:
        headers = merge_headers(existing.headers, patch.headers, patch.delete)
    except InvalidHeader as exc:
        raise InvalidRequest(str(exc), loc=("body", "headers")) from exc
    return replace(existing, headers=headers, updated_at=now)


async def get(ops: Operations, principal: Principal, app_key: str, key: str) -> Endpoint:
    app = await applications.resolve(ops, principal, app_key)
    return await in_application(ops, app, key)


async def show(
    ops: Operations, principal: Principal, app_key: str, key: str
) -> tuple[Endpoint, CircuitView]:
    """An endpoint and its circuit breaker, as the API shows them (one more query)."""
    endpoint = await get(ops, principal, app_key, key)
    circuits = await ops.store.circuits_of([endpoint.id])
    return endpoint, breaker.view(circuits.get(endpoint.id), ops.clock().timestamp())


async def list_shown(
    ops: Operations, principal: Principal, app_key: str, query: ListQuery
) -> Page[tuple[Endpoint, CircuitView]]:
    """A page of endpoints, each with its circuit breaker: one query for the whole page."""
    page = await list_endpoints(ops, principal, app_key, query)
    circuits = await ops.store.circuits_of([e.id for e in page.data])
    now = ops.clock().timestamp()
    shown = [(e, breaker.view(circuits.get(e.id), now)) for e in page.data]
    return Page(shown, page.iterator, page.prev_iterator, page.done)


async def in_application(ops: Operations, app: Application, key: str) -> Endpoint:
    """An endpoint of an application the caller already resolved (and may see)."""
    found = await ops.store.get_endpoint(app.id, key)
    if found is None:
        raise NotFound("Endpoint not found")
    return found


async def _audit(
    ops: Operations,
    principal: Principal,
    app: Application,
    endpoint_id: str,
    verb: str,
    summary: Mapping[str, Any] | None = None,
) -> None:
    action, app_id = a.endpoint_action(app.id, verb)
    await record(ops, principal, action, app_id=app_id, target_id=endpoint_id, summary=summary)


async def _update(
    ops: Operations,
    principal: Principal,
    app: Application,
    key: str,
    apply: Callable[[Endpoint], Endpoint],
    current: Endpoint | None = None,
    *,
    verb: str = a.UPDATED,
    extra: Mapping[str, Any] | None = None,
) -> Endpoint:
    """Every endpoint change goes through here: read, apply, write, retried on a race. The
    change is announced (``EndpointUpdated``), and so is an endpoint this change enabled
    again (``EndpointEnabled``) or disabled (``EndpointDisabled``, trigger ``manual``).

    It is audited once, as ``verb`` (an update that flips ``disabled`` as ``enabled`` or
    ``disabled``), with the names of the fields it changed, the names of the custom headers
    it set or removed, and ``extra``: never a secret or a header value."""
    was_disabled = False
    replaced: list[Endpoint] = []

    def noting(endpoint: Endpoint) -> Endpoint:
        nonlocal was_disabled
        was_disabled = endpoint.disabled
        replaced.append(endpoint)
        return apply(endpoint)

    stored = await update_with_retry(
        lambda: in_application(ops, app, key),
        noting,
        ops.store.update_endpoint,
        current=current,
    )
    if was_disabled != stored.disabled:
        ops.endpoint_changed(stored.id, stored.version, stored.disabled)
    heard = ops.instrumentation
    if heard.wants(EndpointUpdated):
        heard.emit(EndpointUpdated(stored.app_id, stored.id, stored.uid))
    if was_disabled and not stored.disabled:
        # Enabled again: a failing period from before the disable must not count.
        await ops.store.mark_endpoints_healthy([stored.id])
        heard.emit(EndpointEnabled(stored.app_id, stored.id, stored.uid))
    elif stored.disabled and not was_disabled and heard.wants(EndpointDisabled):
        disabled = EndpointDisabled(
            stored.app_id, stored.id, "it was disabled by an update", "manual", None, stored.uid
        )
        heard.emit(disabled)
    before = replaced[-1]
    changed = a.changed_fields(before, stored)
    summary: dict[str, Any] = {"fields": changed, **(extra or {})}
    if "headers" in changed:
        summary["headers"] = a.header_names(before.headers, stored.headers)
    if verb == a.UPDATED and was_disabled != stored.disabled:
        verb = a.DISABLED if stored.disabled else a.ENABLED
    await _audit(ops, principal, app, stored.id, verb, summary)
    return stored


async def change(
    ops: Operations,
    principal: Principal,
    app: Application,
    key: str,
    apply: Callable[[Endpoint], Endpoint],
    verb: str,
    extra: Mapping[str, Any] | None = None,
) -> Endpoint:
    """An endpoint change made by a sibling module (``endpoint_auth``), the same way as
    this module's own: versioned, retried on a race, announced, audited as ``verb``."""
    return await _update(ops, principal, app, key, apply, verb=verb, extra=extra)


async def list_endpoints(
    ops: Operations, principal: Principal, app_key: str, query: ListQuery
) -> Page[Endpoint]:
    app = await applications.resolve(ops, principal, app_key)
    return await ops.store.list_endpoints(app.id, query)


async def create(
    ops: Operations, principal: Principal, app_key: str, given: EndpointFields
) -> Endpoint:
    app = await applications.resolve(ops, principal, app_key)
    return await create_in(ops, principal, app, given)


async def create_in(
    ops: Operations,
    principal: Principal,
    app: Application,
    given: EndpointFields,
    uid: str | None = None,
) -> Endpoint:
    """Create an endpoint of an application the caller already resolved (and may change)."""
    check_fields(given)
    _checked_url(ops, given.url)
    if uid is not None and given.uid is None:
        inputs.key(("path", "endpoint_id"), uid)
    await _check_room(ops, app)
    event_types = await _event_types(ops, app, given.event_types)
    endpoint = new_endpoint(app, given, event_types, ops.clock(), uid)
    endpoint = replace(endpoint, policy=await _checked_policy(ops, app, endpoint.id, given.policy))
    await ops.store.create_endpoint(endpoint)
    if ops.instrumentation.wants(EndpointCreated):
        ops.instrumentation.emit(EndpointCreated(app.id, endpoint.id, endpoint.uid))
    await _audit(ops, principal, app, endpoint.id, a.CREATED)
    return endpoint


async def _check_room(ops: Operations, app: Application) -> None:
    """Refuse an endpoint past ``HOOKLINE_MAX_ENDPOINTS_PER_APP``: every endpoint multiplies
    each message's deliveries, so an application's token must not add them without bound.
    The count is read before the insert, so creates racing each other may pass the cap
    together, by at most their number."""
    cap = ops.max_endpoints_per_app
    if cap is None:
        return
    count = await ops.store.count_endpoints(app.id)
    if count >= cap:
        raise Conflict(
            f"This application already has {count} endpoints, the most allowed "
            f"(HOOKLINE_MAX_ENDPOINTS_PER_APP={cap}); delete one first",
            code="endpoint_limit_reached",
        )


MAX_FALLBACK_CHAIN = 100
"""Steps followed when looking for a cycle of fallbacks (more than any application has)."""


async def _checked_policy(
    ops: Operations, app: Application, endpoint_id: str, policy: EndpointPolicy
) -> EndpointPolicy:
    """The policy with its fallback destination resolved to an id: another endpoint of the
    same application (by id or uid), not the endpoint itself, and not one whose own fallbacks
    lead back to it. Anything else is a 422 naming ``policy.fallback.endpointId``."""
    fallback = policy.fallback
    if fallback is None:
        return policy
    loc = ("body", "policy", "fallback", "endpointId")
    target = await ops.store.get_endpoint(app.id, fallback.endpoint_id)
    if target is None:
        raise InvalidRequest(
            "policy.fallback.endpointId must name another endpoint of this application", loc=loc
        )
    if target.id == endpoint_id:
        raise InvalidRequest("policy.fallback.endpointId cannot name the endpoint itself", loc=loc)
    step, seen = target, {target.id}
    for _ in range(MAX_FALLBACK_CHAIN):
        if step.policy.fallback is None:
            break
        found = await ops.store.get_endpoint(app.id, step.policy.fallback.endpoint_id)
        if found is None or found.id in seen:
            break
        if found.id == endpoint_id:
            raise InvalidRequest(
                f"policy.fallback.endpointId: {target.id} falls back (through "
                f"{len(seen)} endpoint(s)) to this endpoint; fallbacks may not form a cycle",
                loc=loc,
            )
        step = found
        seen.add(found.id)
    return replace(policy, fallback=replace(fallback, endpoint_id=target.id))


async def upsert(
    ops: Operations, principal: Principal, app_key: str, key: str, given: EndpointFields
) -> tuple[Endpoint, bool]:
    """PUT: replace the endpoint, or create it with the path as its uid; returns it and
    whether it was created."""
    app = await applications.resolve(ops, principal, app_key)
    return await upsert_in(ops, principal, app, key, given)


async def upsert_in(
    ops: Operations, principal: Principal, app: Application, key: str, given: EndpointFields
) -> tuple[Endpoint, bool]:
    _checked_url(ops, given.url)
    existing = await ops.store.get_endpoint(app.id, key)
    if existing is None:
        return await create_in(ops, principal, app, given, uid=key), True
    check_fields(given)
    event_types = await _event_types(ops, app, given.event_types)
    given = replace(given, policy=await _checked_policy(ops, app, existing.id, given.policy))
    updated = await _update(
        ops,
        principal,
        app,
        key,
        lambda ep: replace_endpoint(ep, given, event_types, ops.clock()),
        existing,
    )
    return updated, False


async def patch(
    ops: Operations, principal: Principal, app_key: str, key: str, changes: EndpointPatch
) -> Endpoint:
    check_patch(changes)
    app = await applications.resolve(ops, principal, app_key)
    existing = await in_application(ops, app, key)
    if isinstance(changes.url, str):
        _checked_url(ops, changes.url)
    if not isinstance(changes.event_types, Unset):
        changes = replace(changes, event_types=await _event_types(ops, app, changes.event_types))
    if isinstance(changes.policy, EndpointPolicy):
        app = await applications.resolve(ops, principal, app_key)
        checked = await _checked_policy(ops, app, existing.id, changes.policy)
        changes = replace(changes, policy=checked)
    return await _update(
        ops, principal, app, key, lambda ep: patch_endpoint(ep, changes, ops.clock()), existing
    )


async def delete(ops: Operations, principal: Principal, app_key: str, key: str) -> None:
    app = await applications.resolve(ops, principal, app_key)
    await delete_in(ops, principal, app, key)


async def delete_in(ops: Operations, principal: Principal, app: Application, key: str) -> None:
    endpoint = await in_application(ops, app, key)
    await ops.store.delete_endpoint(app.id, endpoint.id)
    if ops.instrumentation.wants(EndpointDeleted):
        ops.instrumentation.emit(EndpointDeleted(app.id, endpoint.id, endpoint.uid))
    await _audit(ops, principal, app, endpoint.id, a.DELETED)


async def secret(ops: Operations, principal: Principal, app_key: str, key: str) -> str:
    """The current signing secret (older keys still in their grace period are not shown)."""
    return (await get(ops, principal, app_key, key)).current_key.secret


async def rotate_secret(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    new_secret: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> str:
    """Sign with a new secret (given or generated) from now on; return it.

    The old keys keep signing for ``grace`` (see ``domain.rotation``), at most 7 days.
    """
    app = await applications.resolve(ops, principal, app_key)
    return await rotate_secret_in(ops, principal, app, key, new_secret, grace)


async def rotate_secret_in(
    ops: Operations,
    principal: Principal,
    app: Application,
    key: str,
    new_secret: str | None = None,
    grace: timedelta = DEFAULT_GRACE,
) -> str:
    if not timedelta(0) <= grace <= MAX_GRACE:
        raise InvalidRequest(
            "gracePeriodSeconds must be between 0 and 604800 (7 days)",
            loc=("body", "gracePeriodSeconds"),
        )

    def rotate(ep: Endpoint) -> Endpoint:
        now = ops.clock()
        keys = rotate_keys(ep.keys, _secret(new_secret), grace, now)
        return replace(ep, keys=keys, updated_at=now)

    extra = {"gracePeriodSeconds": int(grace.total_seconds()), "generated": new_secret is None}
    updated = await _update(ops, principal, app, key, rotate, verb=a.SECRET_ROTATED, extra=extra)
    return updated.current_key.secret


async def headers(
    ops: Operations, principal: Principal, app_key: str, key: str
) -> tuple[dict[str, str], list[str]]:
    """The custom headers safe to show, and the names of the credentials withheld."""
    return redacted((await get(ops, principal, app_key, key)).headers)


async def set_headers(
    ops: Operations, principal: Principal, app_key: str, key: str, given: Mapping[str, str]
) -> Endpoint:
    """Replace every custom header."""
    app = await applications.resolve(ops, principal, app_key)
    return await set_headers_in(ops, principal, app, key, given)


async def set_headers_in(
    ops: Operations, principal: Principal, app: Application, key: str, given: Mapping[str, str]
) -> Endpoint:
    return await _update(
        ops,
        principal,
        app,
        key,
        lambda ep: replace(ep, headers=_headers(given), updated_at=ops.clock()),
        verb=a.HEADERS_REPLACED,
    )


async def update_headers(
    ops: Operations, principal: Principal, app_key: str, key: str, changes: HeadersPatch
) -> Endpoint:
    """Add or overwrite the given headers and remove the named ones; keep the rest."""
    app = await applications.resolve(ops, principal, app_key)
    return await _update(
        ops,
        principal,
        app,
        key,
        lambda ep: patch_headers(ep, changes, ops.clock()),
        verb=a.HEADERS_UPDATED,
    )


async def stats(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> EndpointStats:
    """Deliveries by status; with ``since``/``until``, of the messages created in that range;
    and the endpoint's rate limit as it stands."""
    since, until = inputs.window("query", since, until)
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await in_application(ops, app, key)
    found = await ops.store.endpoint_stats(app.id, endpoint.id, since, until)
    slowdown = await ops.store.endpoint_slowdown(endpoint.id)
    state = ratelimit.rate_limit_state(
        endpoint.throttle_rate, app.throttle_rate, slowdown, ops.clock().timestamp()
    )
    circuits = await ops.store.circuits_of([endpoint.id])
    view = breaker.view(circuits.get(endpoint.id), ops.clock().timestamp())
    return replace(found, rate_limit=state, circuit=view)


async def disable_failing(ops: Operations, failure: EndpointFailure) -> Endpoint | None:
    """Auto-disable: disable an endpoint that failed for the whole period (once per period,
    decided by the caller with ``advance_failure_step``) and end its failing period.

    The write is a versioned update, so a change made at the same time is kept; an
    endpoint already disabled, or gone, is left alone (None) and nothing is announced.
    """
    disabled_now = False

    def disable(endpoint: Endpoint) -> Endpoint:
        nonlocal disabled_now
        disabled_now = not endpoint.disabled
        return replace(endpoint, disabled=True, updated_at=ops.clock())

    async def read() -> Endpoint:
        found = await ops.store.get_endpoint(failure.app_id, failure.endpoint_id)
        if found is None:
            raise NotFound("Endpoint not found")
        return found

    try:
        stored = await update_with_retry(read, disable, ops.store.update_endpoint)
    except NotFound:
        return None
    await ops.store.mark_endpoints_healthy([failure.endpoint_id])
    if not disabled_now:
        return None
    if ops.instrumentation.wants(EndpointDisabled):
        reason = f"every attempt failed since {failure.failing_since.isoformat()}"
        ops.instrumentation.emit(
            EndpointDisabled(
                stored.app_id, stored.id, reason, "automatic", failure.failing_since, stored.uid
            )
        )
    action, app_id = a.endpoint_action(stored.app_id, a.DISABLED)
    summary = {"fields": ["disabled"], "trigger": "automatic"}
    await record(ops, SYSTEM, action, app_id=app_id, target_id=stored.id, summary=summary)
    return stored
