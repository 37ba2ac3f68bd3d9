"""``PostgresPruner``: retention batches on PostgreSQL, one short transaction each.

Pruners in several processes take turns batch by batch on an advisory lock (two deleting
overlapping rows in different orders could deadlock), so one batch waits at most for
another's. Deleted rows' space is reused by new rows once autovacuum has marked it free;
``compact`` runs that ``VACUUM`` by hand, for servers with autovacuum off. Why this is
batched ``DELETE`` and not dropped time partitions: docs/performance-decisions.md.
"""

from __future__ import annotations

from typing import Any

from hookline.storage.base import PruneBatch
from hookline.storage.postgres.connector import PostgresConnector, PostgresHandle
from hookline.storage.pruning import Scanned, batch, read_scan

PRUNE_LOCK_KEY = 0x686F6F6C  # "hool": pruners take turns, one batch each


class PostgresPruner:
    def __init__(self, connector: PostgresConnector) -> None:
        self._db = connector

    async def prune(self, params: dict[str, Any], dry_run: bool) -> PruneBatch:
        async with self._db.transaction() as tx:
            if dry_run:
                return await _count(tx, await _scan(tx, params))
            await tx.query("lock_pruning", {"key": PRUNE_LOCK_KEY})
            scanned = await _scan(tx, params)
            if not scanned.removable:
                return batch(scanned, 0, 0, 0)
            deliveries = await tx.execute("prune_deliveries", {"ids": scanned.removable})
            gone = [r["id"] for r in await tx.query("prune_messages", {"ids": scanned.removable})]
            attempts = await tx.execute("prune_attempts", {"ids": gone})
            return batch(scanned, len(gone), deliveries, attempts)

    async def reclaim(self, max_pages: int) -> int:
        return 0

    async def compact(self) -> bool:
        """``VACUUM`` the three tables now (outside a transaction, as it must run): for a
        server whose autovacuum is off, or an operator who will not wait for it."""
        await self._db.execute("vacuum_retained", {})
        return True


async def _scan(tx: PostgresHandle, params: dict[str, Any]) -> Scanned:
    return read_scan(await tx.query("prune_scan", params), params["limit"])


async def _count(tx: PostgresHandle, scanned: Scanned) -> PruneBatch:
    ids = {"ids": scanned.removable}
    deliveries = (await tx.query("prunable_deliveries", ids))[0][0]
    attempts = (await tx.query("prunable_attempts", ids))[0][0]
    return batch(scanned, len(scanned.removable), int(deliveries), int(attempts))
