"""Applications: the tenants that own endpoints and messages.

Reads go through a one-second cache (every publish names its application); an update or
delete through this process drops the entry at once. Tenant isolation is applied in
``resolve``: a scoped token sees another application as absent (404), never as forbidden,
so it cannot even learn which applications exist. The reserved application of the
operational webhooks (``operations.operational_webhooks``) is absent to everyone here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from hookline.domain import audit as a
from hookline.domain import ids
from hookline.domain import validation as v
from hookline.domain.errors import NotFound
from hookline.domain.models import Application, Page
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.domain.policy import NO_APPLICATION_POLICY, ApplicationPolicy
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
class NewApplication:
    """Every field of an application a client sets (POST, and PUT which replaces them all)."""

    name: str
    uid: str | None = None
    throttle_rate: int | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    policy: ApplicationPolicy = NO_APPLICATION_POLICY


@dataclass(frozen=True, slots=True)
class ApplicationPatch:
    """A PATCH: only the fields that are not ``UNSET`` change; name and metadata stay set."""

    name: str | Unset | None = UNSET
    uid: str | Unset | None = UNSET
    throttle_rate: int | Unset | None = UNSET
    metadata: Mapping[str, str] | Unset | None = UNSET
    policy: ApplicationPolicy | Unset | None = UNSET
    """None goes back to inheriting the server's policy."""


def check_new(new: NewApplication, loc: inputs.Loc = ("body",)) -> None:
    """The rules every application's fields obey (``domain/validation.py``); ``loc`` is
    where the fields sit in the request (an inline application is under ``application``)."""
    inputs.valid((*loc, "name"), v.check_name, new.name)
    inputs.optional_key((*loc, "uid"), new.uid)
    if new.throttle_rate is not None:
        inputs.valid((*loc, "throttleRate"), v.check_throttle_rate, new.throttle_rate)


def check_patch(patch: ApplicationPatch) -> None:
    if isinstance(patch.name, str):
        inputs.valid(("body", "name"), v.check_name, patch.name)
    if isinstance(patch.uid, str):
        inputs.key(("body", "uid"), patch.uid)
    if isinstance(patch.throttle_rate, int):
        inputs.valid(("body", "throttleRate"), v.check_throttle_rate, patch.throttle_rate)


def new_application(new: NewApplication, now: datetime, uid: str | None = None) -> Application:
    """A fresh application; ``uid`` is the fallback when the input names none (PUT's path)."""
    return Application(
        id=ids.new_id(ids.APP),
        name=new.name,
        uid=new.uid if new.uid is not None else uid,
        throttle_rate=new.throttle_rate,
        metadata=dict(new.metadata),
        created_at=now,
        updated_at=now,
        policy=new.policy,
    )


def replace_application(app: Application, new: NewApplication, now: datetime) -> Application:
    """PUT on an existing application: every field from the input, the uid kept if omitted."""
    return replace(
        app,
        name=new.name,
        uid=new.uid if new.uid is not None else app.uid,
        throttle_rate=new.throttle_rate,
        metadata=dict(new.metadata),
        policy=new.policy,
        updated_at=now,
    )


def patch_application(app: Application, patch: ApplicationPatch, now: datetime) -> Application:
    changes = changed_fields(patch, required=("name", "metadata"))
    if "metadata" in changes:
        changes["metadata"] = dict(changes["metadata"])
    if changes.get("policy", NO_APPLICATION_POLICY) is None:
        changes["policy"] = NO_APPLICATION_POLICY
    return replace(app, **changes, updated_at=now)


async def resolve(ops: Operations, principal: Principal, key: str) -> Application:
    """The application with this id or uid, as this caller may see it (cached briefly)."""
    app = ops.app_cache.get(key)
    if app is None:
        app = await ops.store.get_application(key)
        if app is not None:
            ops.app_cache.put(key, app)
    if app is None or app.id == OPERATIONAL_APP_ID or not principal.sees(app):
        raise NotFound("Application not found")
    return app


async def _fresh(ops: Operations, principal: Principal, key: str) -> Application:
    """The stored application, bypassing the cache: what an update must start from."""
    app = await ops.store.get_application(key)
    if app is None or app.id == OPERATIONAL_APP_ID or not principal.sees(app):
        raise NotFound("Application not found")
    return app


async def list_applications(
    ops: Operations,
    principal: Principal,
    query: ListQuery,
    *,
    exclude_without_endpoints: bool = False,
) -> Page[Application]:
    principal.require_admin()
    return await ops.store.list_applications(query, exclude_without_endpoints)


async def create(
    ops: Operations, principal: Principal, new: NewApplication, *, get_if_exists: bool = False
) -> tuple[Application, bool]:
    """Create an application; with ``get_if_exists`` an existing uid returns that one.

    Returns the application and whether it was created.
    """
    principal.require_admin()
    check_new(new)
    if get_if_exists and new.uid is not None:
        existing = await ops.store.get_application(new.uid)
        if existing is not None:
            return existing, False
    app = new_application(new, ops.clock())
    await ops.store.create_application(app)
    await record(ops, principal, a.APPLICATION_CREATED, app_id=app.id, target_id=app.id)
    return app, True


async def resolve_or_create(
    ops: Operations, principal: Principal, key: str, inline: NewApplication | None
) -> Application:
    """Svix lets a publish or a portal link carry the application to create when missing.

    Only an admin may create one; for anyone else a missing application stays a 404.
    """
    try:
        return await resolve(ops, principal, key)
    except NotFound:
        if inline is None or not principal.is_admin:
            raise
    check_new(inline, ("body", "application"))
    if inline.uid is None:
        inputs.key(("path", "app_id"), key)
    app = new_application(inline, ops.clock(), uid=key)
    await ops.store.create_application(app)
    summary = {"inline": True}
    await record(
        ops, principal, a.APPLICATION_CREATED, app_id=app.id, target_id=app.id, summary=summary
    )
    return app


async def upsert(
    ops: Operations, principal: Principal, key: str, new: NewApplication
) -> tuple[Application, bool]:
    """PUT: replace the application, or create it with the path as its uid."""
    principal.require_admin()
    check_new(new)
    existing = await ops.store.get_application(key)
    if existing is None:
        if new.uid is None:
            inputs.key(("path", "app_id"), key)
        app = new_application(new, ops.clock(), uid=key)
        await ops.store.create_application(app)
        await record(ops, principal, a.APPLICATION_CREATED, app_id=app.id, target_id=app.id)
        return app, True
    updated = await _update(
        ops,
        principal,
        key,
        lambda app: replace_application(app, new, ops.clock()),
        existing,
    )
    return updated, False


async def patch(
    ops: Operations, principal: Principal, key: str, changes: ApplicationPatch
) -> Application:
    principal.require_admin()
    check_patch(changes)
    return await _update(
        ops, principal, key, lambda app: patch_application(app, changes, ops.clock())
    )


async def _update(
    ops: Operations,
    principal: Principal,
    key: str,
    apply: Callable[[Application], Application],
    current: Application | None = None,
) -> Application:
    """Every application update: read, apply, write (retried on a race), then audited with
    the fields the write changed from the version it replaced."""
    replaced: list[Application] = []

    def noting(app: Application) -> Application:
        replaced.append(app)
        return apply(app)

    updated = await update_with_retry(
        lambda: _fresh(ops, principal, key), noting, ops.store.update_application, current=current
    )
    ops.app_cache.forget(updated)
    summary = {"fields": a.changed_fields(replaced[-1], updated)}
    await record(
        ops,
        principal,
        a.APPLICATION_UPDATED,
        app_id=updated.id,
        target_id=updated.id,
        summary=summary,
    )
    return updated


async def delete(ops: Operations, principal: Principal, key: str) -> None:
    principal.require_admin()
    app = await resolve(ops, principal, key)
    await ops.store.delete_application(app.id)
    ops.app_cache.forget(app)
    await record(ops, principal, a.APPLICATION_DELETED, app_id=app.id, target_id=app.id)
