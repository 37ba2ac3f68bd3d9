"""Reading the audit log: the whole log for an admin, one application's for its tokens.

Apart from ``operations.audit`` (recording), which every operation imports, so that this
module may resolve an application (``operations.applications``) without an import cycle.
No operation changes or removes an entry: the log is append-only, and only retention
(``delivery/retention.py``) removes the entries older than its horizon.
"""

from __future__ import annotations

import contextlib
from dataclasses import replace

from hookline.domain.audit import AuditEntry, AuditFilter, seen_by
from hookline.domain.errors import NotFound
from hookline.domain.models import Page
from hookline.operations import applications, inputs
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.storage.base import ListQuery


def _checked(filters: AuditFilter) -> AuditFilter:
    since, until = inputs.window("query", filters.since, filters.until)
    return replace(filters, since=since, until=until)


async def list_entries(
    ops: Operations, principal: Principal, query: ListQuery, filters: AuditFilter
) -> Page[AuditEntry]:
    """The whole log, filtered: admins only (it names every token and address). The
    application filter takes an id or a uid; an id no application has any more still finds
    the entries about it, since they outlive it."""
    principal.require_admin()
    filters = _checked(filters)
    if filters.app_id is not None:
        with contextlib.suppress(NotFound):
            app = await applications.resolve(ops, principal, filters.app_id)
            filters = replace(filters, app_id=app.id)
    return await ops.store.list_audit(query, filters)


async def list_for_application(
    ops: Operations,
    principal: Principal,
    app_key: str,
    query: ListQuery,
    filters: AuditFilter,
) -> Page[AuditEntry]:
    """The entries of one application, resolved with tenant isolation (another's is a 404),
    as its tokens may see them (``domain.audit.seen_by``)."""
    app = await applications.resolve(ops, principal, app_key)
    page = await ops.store.list_audit(query, replace(_checked(filters), app_id=app.id))
    shown = [seen_by(entry, principal.app_id) for entry in page.data]
    return Page(shown, page.iterator, page.prev_iterator, page.done)
