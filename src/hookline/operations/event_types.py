"""Event types: the catalogue of event names endpoints can filter on.

Any valid token reads the catalogue; only an admin changes it. Deleting archives, as Svix
does, unless the caller asks to expunge.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hookline.domain import audit as a
from hookline.domain import validation as v
from hookline.domain.errors import InvalidRequest, NotFound
from hookline.domain.models import EventType, Page
from hookline.operations import inputs
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.updates import (
    UNSET,
    Unset,
    changed_fields,
    update_with_retry,
)
from hookline.storage.base import ListQuery


@dataclass(frozen=True, slots=True)
class EventTypeFields:
    """Every field of an event type but its name (POST and PUT set them all)."""

    description: str
    archived: bool = False
    deprecated: bool = False
    schemas: Mapping[str, Any] | None = None
    group_name: str | None = None
    feature_flags: Sequence[str] | None = None


@dataclass(frozen=True, slots=True)
class EventTypePatch:
    """A PATCH: description, archived and deprecated cannot be set to None (kept instead)."""

    description: str | Unset | None = UNSET
    archived: bool | Unset | None = UNSET
    deprecated: bool | Unset | None = UNSET
    schemas: Mapping[str, Any] | Unset | None = UNSET
    group_name: str | Unset | None = UNSET
    feature_flags: Sequence[str] | Unset | None = UNSET


def check_fields(given: EventTypeFields | EventTypePatch) -> None:
    """The rules every event type's fields obey, on create, PUT and PATCH alike."""
    if isinstance(given.description, str):
        inputs.valid(("body", "description"), v.check_description, given.description)
    if isinstance(given.group_name, str):
        inputs.key(("body", "groupName"), given.group_name, "groupName")
    if isinstance(given.feature_flags, Sequence):
        inputs.keys(("body", "featureFlags"), given.feature_flags, "each feature flag")
    if isinstance(given.schemas, Mapping):
        problem = v.json_problem(given.schemas)
        if problem is not None:
            raise InvalidRequest(f"schemas: {problem}", loc=("body", "schemas"))


def _flags(value: Sequence[str] | None) -> tuple[str, ...] | None:
    return None if value is None else tuple(value)


def new_event_type(name: str, given: EventTypeFields, now: datetime) -> EventType:
    return EventType(
        name=name,
        description=given.description,
        archived=given.archived,
        deprecated=given.deprecated,
        schemas=None if given.schemas is None else dict(given.schemas),
        group_name=given.group_name,
        feature_flags=_flags(given.feature_flags),
        created_at=now,
        updated_at=now,
    )


def replace_event_type(existing: EventType, given: EventTypeFields, now: datetime) -> EventType:
    """PUT on an existing event type: every field from the input; its creation time kept,
    and the version it was read at, which the write checks."""
    fresh = new_event_type(existing.name, given, now)
    return replace(fresh, created_at=existing.created_at, version=existing.version)


def patch_event_type(existing: EventType, patch: EventTypePatch, now: datetime) -> EventType:
    changes = changed_fields(patch, required=("description", "archived", "deprecated"))
    if "feature_flags" in changes:
        changes["feature_flags"] = _flags(changes["feature_flags"])
    if changes.get("schemas") is not None:
        changes["schemas"] = dict(changes["schemas"])
    return replace(existing, **changes, updated_at=now)


async def get(ops: Operations, principal: Principal, name: str) -> EventType:
    found = await ops.store.get_event_type(name)
    if found is None:
        raise NotFound("Event type not found")
    return found


async def list_event_types(
    ops: Operations, principal: Principal, query: ListQuery, *, include_archived: bool = False
) -> Page[EventType]:
    return await ops.store.list_event_types(query, include_archived)


async def create(
    ops: Operations, principal: Principal, name: str, given: EventTypeFields
) -> EventType:
    """Create an event type; an existing name (archived or not) is a 409."""
    principal.require_admin()
    inputs.key(("body", "name"), name, "name")
    check_fields(given)
    event_type = new_event_type(name, given, ops.clock())
    await ops.store.create_event_type(event_type)
    await record(ops, principal, a.EVENT_TYPE_CREATED, target_id=name)
    return event_type


async def upsert(
    ops: Operations, principal: Principal, name: str, given: EventTypeFields
) -> tuple[EventType, bool]:
    """PUT: replace the event type, or create it; returns it and whether it was created."""
    principal.require_admin()
    inputs.key(("path", "event_type_name"), name, "event type name")
    check_fields(given)
    existing = await ops.store.get_event_type(name)
    if existing is None:
        return await create(ops, principal, name, given), True
    updated = await _update(
        ops,
        principal,
        name,
        lambda current: replace_event_type(current, given, ops.clock()),
        existing,
    )
    return updated, False


async def patch(
    ops: Operations, principal: Principal, name: str, changes: EventTypePatch
) -> EventType:
    principal.require_admin()
    check_fields(changes)
    return await _update(
        ops, principal, name, lambda current: patch_event_type(current, changes, ops.clock())
    )


async def _update(
    ops: Operations,
    principal: Principal,
    name: str,
    apply: Callable[[EventType], EventType],
    current: EventType | None = None,
    action: str = a.EVENT_TYPE_UPDATED,
) -> EventType:
    """Every event-type update: read, apply, write (retried on a race), then audited with
    the fields the write changed from the version it replaced."""
    replaced: list[EventType] = []

    def noting(event_type: EventType) -> EventType:
        replaced.append(event_type)
        return apply(event_type)

    updated = await update_with_retry(
        lambda: get(ops, principal, name), noting, ops.store.update_event_type, current=current
    )
    summary = {"fields": a.changed_fields(replaced[-1], updated)}
    await record(ops, principal, action, target_id=name, summary=summary)
    return updated


async def delete(ops: Operations, principal: Principal, name: str, *, expunge: bool) -> None:
    """Archive (hidden from lists by default, still routable) or, with ``expunge``, remove."""
    principal.require_admin()
    if expunge:
        existing = await get(ops, principal, name)
        await ops.store.delete_event_type(existing.name)
        await record(ops, principal, a.EVENT_TYPE_DELETED, target_id=existing.name)
        return
    archive = EventTypePatch(archived=True)
    await _update(
        ops,
        principal,
        name,
        lambda current: patch_event_type(current, archive, ops.clock()),
        action=a.EVENT_TYPE_ARCHIVED,
    )
