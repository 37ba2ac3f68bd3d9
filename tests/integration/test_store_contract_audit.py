"""The storage contract for the audit log, on every backend.

Part of the store contract (``test_store_contract.py``), kept in its own file: appending,
listing with filters and cursor pages, pruning past the horizon, and the absence of any
method that changes an entry.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hookline.delivery.retention import prune, prune_audit
from hookline.domain import ids
from hookline.domain.audit import AuditEntry, AuditFilter
from hookline.storage.base import ListQuery, Store
from hookline.storage.repository import SqlRepository
from tests.conftest import make_app, utcnow


def entry(action: str = "endpoint.updated", *, days_ago: float = 0, **more: Any) -> AuditEntry:
    """An entry recorded ``days_ago`` (whole milliseconds, as the store keeps times)."""
    when = (utcnow() - timedelta(days=days_ago)).replace(microsecond=0)
    fields: dict[str, Any] = {
        "actor": "tok_a",
        "address": "192.0.2.1",
        "app_id": "app_1",
        "target_id": "ep_1",
        "summary": {"fields": ["url"]},
        "actor_app_id": None,
    }
    fields.update(more)
    return AuditEntry(id=ids.new_id(ids.AUDIT), created_at=when, action=action, **fields)


async def _ids(store: Store, filters: AuditFilter, **query: Any) -> list[str]:
    page = await store.list_audit(ListQuery(**query), filters)
    return [e.id for e in page.data]


async def test_an_appended_entry_reads_back_whole(store: Store) -> None:
    """Every field of an entry, its summary included, comes back as it was appended."""
    written = entry(summary={"fields": ["headers"], "headers": {"set": ["x-a"], "removed": []}})
    await store.append_audit(written)
    page = await store.list_audit(ListQuery(), AuditFilter())
    assert page.data == [written] and page.done


async def test_entries_outlive_their_application(store: Store) -> None:
    """Deleting an application leaves the entries about it: they are the record of it."""
    app = make_app()
    await store.create_application(app)
    await store.append_audit(entry("application.created", app_id=app.id, target_id=app.id))
    await store.delete_application(app.id)
    assert len(await _ids(store, AuditFilter(app_id=app.id))) == 1


async def test_filters_narrow_by_application_actor_action_and_time(store: Store) -> None:
    """Each filter alone, and together; an action filter finds whole dotted segments only."""
    old = entry("endpoint.created", days_ago=3)
    other_app = entry("endpoint.updated", app_id="app_2")
    by_cli = entry("token.created", actor="cli", app_id=None)
    lookalike = entry("endpoints_x.updated")
    recent = entry("endpoint.secret_rotated")
    for e in (old, other_app, by_cli, lookalike, recent):
        await store.append_audit(e)
    assert await _ids(store, AuditFilter(app_id="app_2")) == [other_app.id]
    assert await _ids(store, AuditFilter(actor="cli")) == [by_cli.id]
    endpoint_ids = await _ids(store, AuditFilter(action="endpoint"))
    assert endpoint_ids == [old.id, other_app.id, recent.id]
    assert await _ids(store, AuditFilter(action="endpoint.")) == endpoint_ids
    assert await _ids(store, AuditFilter(action="endpoint.created")) == [old.id]
    assert await _ids(store, AuditFilter(action="endpoint.create")) == []
    day_ago = utcnow() - timedelta(days=1)
    assert old.id not in await _ids(store, AuditFilter(since=day_ago))
    assert await _ids(store, AuditFilter(until=day_ago)) == [old.id]
    both = AuditFilter(app_id="app_1", action="endpoint", since=day_ago)
    assert await _ids(store, both) == [recent.id]


async def test_pages_cover_every_entry_once_both_ways(store: Store) -> None:
    """Cursor pages, newest first, cover every entry once, and prevIterator goes back."""
    written = [entry() for _ in range(5)]
    for e in written:
        await store.append_audit(e)
    newest_first = [e.id for e in reversed(written)]
    first = await store.list_audit(ListQuery(limit=2, descending=True), AuditFilter())
    second = await store.list_audit(
        ListQuery(limit=2, descending=True, iterator=first.iterator), AuditFilter()
    )
    third = await store.list_audit(
        ListQuery(limit=2, descending=True, iterator=second.iterator), AuditFilter()
    )
    seen = [e.id for page in (first, second, third) for e in page.data]
    assert seen == newest_first
    assert (first.done, second.done, third.done) == (False, False, True)
    back = await store.list_audit(
        ListQuery(limit=2, descending=True, iterator=second.prev_iterator), AuditFilter()
    )
    assert [e.id for e in back.data] == newest_first[:2]


async def test_prune_removes_the_oldest_entries_before_the_horizon_in_batches(
    store: Store,
) -> None:
    """``prune_audit`` removes at most its limit, oldest first, only entries older than the
    horizon; a dry run counts and keeps them."""
    old = [entry(days_ago=10 + i) for i in range(3)]
    young = entry(days_ago=1)
    for e in (*old, young):
        await store.append_audit(e)
    horizon = utcnow() - timedelta(days=5)
    assert await store.prune_audit(horizon, 100, dry_run=True) == 3
    assert await store.prune_audit(horizon, 2) == 2
    left = await _ids(store, AuditFilter())
    assert left == [old[0].id, young.id]  # the two oldest went first
    assert await store.prune_audit(horizon, 2) == 1
    assert await _ids(store, AuditFilter()) == [young.id]


async def test_the_retention_pass_prunes_audit_entries_with_its_own_batches(
    store: Store,
) -> None:
    """``hookline prune`` and the worker's pass remove old entries in batches until none is
    left before the horizon, and report how many; a dry run removes nothing."""
    for i in range(5):
        await store.append_audit(entry(days_ago=30 + i))
    keep = entry(days_ago=1)
    await store.append_audit(keep)
    horizon = utcnow() - timedelta(days=7)
    assert (await prune(store, horizon, dry_run=True)).audit == 5
    assert len(await _ids(store, AuditFilter())) == 6
    assert await prune_audit(store, horizon, batch=2) == 5
    assert await _ids(store, AuditFilter()) == [keep.id]
    assert (await prune(store, horizon)).audit == 0


def test_no_store_method_changes_or_removes_one_entry() -> None:
    """The log is append-only: the store can append, list and prune by age, nothing else."""
    audit_methods = {name for name in dir(SqlRepository) if "audit" in name}
    assert audit_methods == {"append_audit", "list_audit", "prune_audit"}
