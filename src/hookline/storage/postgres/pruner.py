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
                return await _count(tx, read_scan(await _scan(tx, params), params["limit"]))
            await tx.query("lock_pruning", {"key": PRUNE_LOCK_KEY})
            found = await _scan(tx, params)
            scanned = read_scan(found, params["limit"])
            if not scanned.removable:
                return batch(scanned, 0, 0, 0)
            # The deletes name the scanned range and the few ids in it that stay, not the
            # ids that go: see prune_deliveries.
            scanned_ids = [r["id"] for r in found]
            removable = set(scanned.removable)
            span = {
                "first_id": scanned_ids[0],
                "last_id": scanned_ids[-1],
                "before": params["before"],
            }
            kept = [i for i in scanned_ids if i not in removable]
            deliveries = await tx.execute("prune_deliveries", {**span, "kept": kept})
            gone = {r["id"] for r in await tx.query("prune_messages", {**span, "kept": kept})}
            kept_attempts = [i for i in scanned_ids if i not in gone]
            attempts = await tx.execute("prune_attempts", {**span, "kept": kept_attempts})
            return batch(scanned, len(gone), deliveries, attempts)

    async def reclaim(self, max_pages: int) -> int:
        return 0

    async def compact(self) -> bool:
        """``VACUUM`` the three tables now (outside a transaction, as it must run): for a
        server whose autovacuum is off, or an operator who will not wait for it."""
        await self._db.execute("vacuum_retained", {})
        return True


async def _scan(tx: PostgresHandle, params: dict[str, Any]) -> list[Any]:
    return list(await tx.query("prune_scan", params))


async def _count(tx: PostgresHandle, scanned: Scanned) -> PruneBatch:
    ids = {"ids": scanned.removable}
    deliveries = (await tx.query("prunable_deliveries", ids))[0][0]
    attempts = (await tx.query("prunable_attempts", ids))[0][0]
    return batch(scanned, len(scanned.removable), int(deliveries), int(attempts))
