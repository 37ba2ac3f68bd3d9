"""Statistics read from the attempt rollups (``domain/rollups.py``), never from the attempts.

An endpoint's attempt statistics over any window read a few hundred rollup rows at most
(hour rows over a month, minute rows over the last two days), whatever the traffic was.
"""

from __future__ import annotations

from datetime import datetime

from hookline.domain.errors import InvalidRequest
from hookline.domain.rollups import RollupSummary, window
from hookline.operations import applications, inputs
from hookline.operations.context import Operations
from hookline.operations.endpoints import in_application
from hookline.operations.principal import Principal


async def attempt_stats(
    ops: Operations,
    principal: Principal,
    app_key: str,
    key: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> RollupSummary:
    """An endpoint's attempts that started in [``since``, ``until``), by outcome; the bounds
    are widened to whole rows (minutes for a window within the minutes kept, else hours, as
    Svix rounds to hours). An open bound is open: everything retention kept."""
    since = inputs.time(("query", "since"), since)
    until = inputs.time(("query", "until"), until)
    if since is not None and until is not None and since >= until:
        raise InvalidRequest("'since' must be earlier than 'until'", loc=("query", "since"))
    app = await applications.resolve(ops, principal, app_key)
    endpoint = await in_application(ops, app, key)
    rows = window(since, until, ops.clock())
    return await ops.store.sum_rollups(endpoint.id, rows.period_seconds, rows.start, rows.end)
