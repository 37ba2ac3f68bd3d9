"""Event-type operations on every backend: admin-only changes, upserts, archive or expunge."""

from __future__ import annotations

import pytest

from hookline.domain.errors import Conflict, Forbidden, NotFound
from hookline.operations import event_types
from hookline.operations.event_types import EventTypeFields, EventTypePatch
from hookline.operations.principal import SYSTEM, Principal
from hookline.storage.base import ListQuery
from tests.integration.conftest import Ops

PORTAL = Principal(token_id="tok_p", app_id="app_1")


async def _names(ops: Ops, *, include_archived: bool = False) -> list[str]:
    page = await event_types.list_event_types(
        ops.ops, PORTAL, ListQuery(), include_archived=include_archived
    )
    return [et.name for et in page.data]


async def test_any_token_reads_the_catalogue_but_only_admins_change_it(ops: Ops) -> None:
    """A scoped principal lists and reads event types; every change is Forbidden for it."""
    created = await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d"))
    assert await event_types.get(ops.ops, PORTAL, "a.b") == created
    assert await _names(ops) == ["a.b"]
    with pytest.raises(Forbidden):
        await event_types.create(ops.ops, PORTAL, "c.d", EventTypeFields("d"))
    with pytest.raises(Forbidden):
        await event_types.upsert(ops.ops, PORTAL, "a.b", EventTypeFields("x"))
    with pytest.raises(Forbidden):
        await event_types.patch(ops.ops, PORTAL, "a.b", EventTypePatch(description="x"))
    with pytest.raises(Forbidden):
        await event_types.delete(ops.ops, PORTAL, "a.b", expunge=True)
    assert await event_types.get(ops.ops, SYSTEM, "a.b") == created


async def test_a_taken_name_is_a_conflict(ops: Ops) -> None:
    """Creating an event type twice is a 409 event_type_exists."""
    await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d"))
    with pytest.raises(Conflict) as clash:
        await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d"))
    assert clash.value.code == "event_type_exists"


async def test_upsert_creates_then_replaces_keeping_the_creation_time(ops: Ops) -> None:
    """PUT creates a missing event type, then replaces every field but created_at."""
    created, was_created = await event_types.upsert(
        ops.ops, SYSTEM, "a.b", EventTypeFields("one", group_name="g", feature_flags=["f"])
    )
    assert was_created and created.feature_flags == ("f",)
    replaced, was_created = await event_types.upsert(ops.ops, SYSTEM, "a.b", EventTypeFields("two"))
    assert not was_created and replaced.created_at == created.created_at
    assert (replaced.description, replaced.group_name, replaced.feature_flags) == (
        "two",
        None,
        None,
    )
    assert await event_types.get(ops.ops, SYSTEM, "a.b") == replaced


async def test_patch_changes_only_named_fields(ops: Ops) -> None:
    """PATCH keeps fields it does not name, and a null description is ignored."""
    await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d", group_name="g"))
    patched = await event_types.patch(
        ops.ops, SYSTEM, "a.b", EventTypePatch(description=None, deprecated=True)
    )
    assert (patched.description, patched.group_name, patched.deprecated) == ("d", "g", True)
    assert await event_types.get(ops.ops, SYSTEM, "a.b") == patched
    with pytest.raises(NotFound):
        await event_types.patch(ops.ops, SYSTEM, "x.y", EventTypePatch(deprecated=True))


async def test_delete_archives_unless_expunged(ops: Ops) -> None:
    """Delete archives (hidden from default lists); expunge removes the event type."""
    await event_types.create(ops.ops, SYSTEM, "a.b", EventTypeFields("d"))
    await event_types.delete(ops.ops, SYSTEM, "a.b", expunge=False)
    assert await _names(ops) == []
    assert await _names(ops, include_archived=True) == ["a.b"]
    assert (await event_types.get(ops.ops, SYSTEM, "a.b")).archived is True
    await event_types.delete(ops.ops, SYSTEM, "a.b", expunge=True)
    with pytest.raises(NotFound):
        await event_types.get(ops.ops, SYSTEM, "a.b")
