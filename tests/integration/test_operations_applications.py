"""Application operations on every backend: admin rules, tenant isolation, upserts, cache."""

from __future__ import annotations

import pytest

from hookline.domain.errors import Forbidden, NotFound
from hookline.domain.models import Application
from hookline.operations import applications
from hookline.operations.applications import ApplicationPatch, NewApplication
from hookline.operations.principal import SYSTEM, Principal
from hookline.storage.base import ListQuery
from tests.integration.conftest import Ops


async def _create(o: Ops, uid: str, name: str = "Acme") -> Application:
    app, created = await applications.create(o.ops, SYSTEM, NewApplication(name, uid=uid))
    assert created
    return app


def _scoped(app: Application) -> Principal:
    return Principal(token_id="tok_portal", app_id=app.id)


async def test_get_if_exists_returns_the_existing_application_unchanged(ops: Ops) -> None:
    """With get_if_exists, a uid already taken returns that application and creates nothing."""
    first = await _create(ops, "acme")
    again, created = await applications.create(
        ops.ops, SYSTEM, NewApplication("Other", uid="acme"), get_if_exists=True
    )
    assert not created and again == first
    page = await applications.list_applications(ops.ops, SYSTEM, ListQuery())
    assert [a.id for a in page.data] == [first.id]


async def test_upsert_creates_under_the_path_uid_then_replaces(ops: Ops) -> None:
    """PUT creates a missing application with the path as uid; the next PUT updates it."""
    created, was_created = await applications.upsert(ops.ops, SYSTEM, "by-put", NewApplication("A"))
    assert was_created and created.uid == "by-put"
    updated, was_created = await applications.upsert(
        ops.ops, SYSTEM, "by-put", NewApplication("B", throttle_rate=3)
    )
    assert not was_created and updated.id == created.id
    assert (updated.name, updated.uid, updated.throttle_rate) == ("B", "by-put", 3)
    assert await ops.store.get_application(created.id) == updated


async def test_patch_is_stored_and_seen_at_once_despite_the_cache(ops: Ops) -> None:
    """A PATCH drops the cached copy, so the next read in this process sees the change."""
    app = await _create(ops, "acme")
    assert (await applications.resolve(ops.ops, SYSTEM, "acme")).name == "Acme"
    patched = await applications.patch(ops.ops, SYSTEM, "acme", ApplicationPatch(name="New"))
    assert patched.name == "New" and patched.id == app.id
    assert (await applications.resolve(ops.ops, SYSTEM, "acme")).name == "New"
    assert await ops.store.get_application(app.id) == patched


async def test_delete_drops_the_cached_copy(ops: Ops) -> None:
    """After a delete the application is gone for this process too, not cached for a second."""
    await _create(ops, "acme")
    await applications.resolve(ops.ops, SYSTEM, "acme")
    await applications.delete(ops.ops, SYSTEM, "acme")
    with pytest.raises(NotFound):
        await applications.resolve(ops.ops, SYSTEM, "acme")


async def test_scoped_principal_sees_its_application_and_no_other(ops: Ops) -> None:
    """Another tenant's application is NotFound (404) for a scoped principal, by id or uid."""
    mine = await _create(ops, "mine")
    theirs = await _create(ops, "theirs")
    portal = _scoped(mine)
    assert await applications.resolve(ops.ops, portal, "mine") == mine
    for key in ("theirs", theirs.id):
        with pytest.raises(NotFound):
            await applications.resolve(ops.ops, portal, key)


async def test_scoped_principal_cannot_change_applications(ops: Ops) -> None:
    """Listing, creating, replacing, patching and deleting applications need an admin."""
    mine = await _create(ops, "mine")
    portal = _scoped(mine)
    with pytest.raises(Forbidden):
        await applications.list_applications(ops.ops, portal, ListQuery())
    with pytest.raises(Forbidden):
        await applications.create(ops.ops, portal, NewApplication("X"))
    with pytest.raises(Forbidden):
        await applications.upsert(ops.ops, portal, "mine", NewApplication("X"))
    with pytest.raises(Forbidden):
        await applications.patch(ops.ops, portal, "mine", ApplicationPatch(name="X"))
    with pytest.raises(Forbidden):
        await applications.delete(ops.ops, portal, "mine")
    assert await ops.store.get_application(mine.id) == mine


async def test_inline_creation_is_for_admins_only(ops: Ops) -> None:
    """A missing application is created from the inline one for an admin, never for a
    scoped principal, and never without an inline application."""
    mine = await _create(ops, "mine")
    with pytest.raises(NotFound):
        await applications.resolve_or_create(ops.ops, _scoped(mine), "new-co", NewApplication("N"))
    with pytest.raises(NotFound):
        await applications.resolve_or_create(ops.ops, SYSTEM, "new-co", None)
    assert await ops.store.get_application("new-co") is None
    created = await applications.resolve_or_create(
        ops.ops, SYSTEM, "new-co", NewApplication("New Co")
    )
    assert (created.uid, created.name) == ("new-co", "New Co")
    existing = await applications.resolve_or_create(ops.ops, SYSTEM, "new-co", NewApplication("Z"))
    assert existing == created
