"""Recording the audit log: the one helper every operation that changes state calls.

An operation calls ``record`` once its change has been written, with the caller's
``Principal`` (whose token id and address say who acted and from where) and a summary built
by ``domain.audit`` (field names, never values). The entry is written just after the change,
not in its transaction: the store's writes are one statement or one dialect-specific
transaction each, shared with the worker, and threading an entry through every one of them
would double the store's surface for one insert. So a change that fails (refused, absent,
conflicting, a lost race) records nothing, and a change that succeeds records exactly one
entry, unless the process dies, or the store fails, in the instant between the two writes:
then the entry is missing and the loss is logged at ERROR (docs/security.md, "Audit log").
The change is not reported as failed then, since it was made: a client told otherwise would
retry it. Reading the log is ``operations.audit_log``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from hookline.domain import ids
from hookline.domain.audit import AuditEntry
from hookline.domain.errors import Unavailable
from hookline.operations.context import Operations
from hookline.operations.principal import Principal

log = logging.getLogger("hookline.audit")


async def record(
    ops: Operations,
    principal: Principal,
    action: str,
    *,
    app_id: str | None = None,
    target_id: str | None = None,
    summary: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry for a change that has just been written; return it."""
    entry = AuditEntry(
        id=ids.new_id(ids.AUDIT),
        created_at=ops.clock(),
        actor=principal.actor,
        address=principal.address,
        action=action,
        app_id=app_id,
        target_id=target_id,
        summary=dict(summary or {}),
        actor_app_id=principal.app_id,
    )
    try:
        await ops.store.append_audit(entry)
    except Unavailable as exc:
        log.error(
            "audit entry lost: %s of %s by %s (the change itself was made): %s",
            action,
            target_id,
            entry.actor,
            exc,
        )
    return entry
