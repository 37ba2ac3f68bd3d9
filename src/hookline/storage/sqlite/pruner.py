"""``SqlitePruner``: retention batches and space reuse on one SQLite file.

A batch is one short write transaction on the connection's thread (scan, then delete by
key), so a publish or a claim waits at most one batch for the write lock. Deleted rows'
pages go to the file's free list, where new rows reuse them; with ``auto_vacuum =
INCREMENTAL`` (set on every new database, ``connector.py``) ``reclaim`` also gives the free
pages beyond a reserve back to the file system, a bounded number at a time. An older
database is switched once by ``compact`` (``hookline prune --vacuum``), which rebuilds the file.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hookline.storage.base import PruneBatch
from hookline.storage.pruning import batch, read_scan
from hookline.storage.sql import SQLITE
from hookline.storage.sqlite.connector import QUERIES, SqliteConnector
from hookline.storage.sqlite.transactions import transaction, without_fsync, write_lock

INCREMENTAL = 2
"""``PRAGMA auto_vacuum``'s value for incremental auto-vacuum."""
FREE_RESERVE = 0.25
"""Free pages up to this share of the pages in use are kept for the rows that come next: in steady
traffic a pass frees about what the next one's publishes fill, and handing those pages back
only to grow the file again would cost page moves and file extensions for nothing. Beyond
it (traffic fell, or the horizon was shortened) the surplus goes back to the file system."""

SEARCH_MERGE_PAGES = 500
"""Pages of merge work each reclaim gives the payload word index (``message_search``,
docs/search.md): FTS5 keeps a deleted message's words, and a delete marker, in its segments
until they merge, so without it the pages a pruned message's words fill would wait for the
index's own merges, which publishes set off. Bounded so that a reclaim holds the write lock
briefly however large the index; the next reclaim goes on where this one stopped."""


class SqlitePruner:
    def __init__(self, connector: SqliteConnector) -> None:
        self._db = connector

    async def prune(self, params: dict[str, Any], dry_run: bool) -> PruneBatch:
        if dry_run:
            return await self._db.run(lambda conn, _lock: _count(conn, params))
        return await self._db.run(lambda conn, lock: _prune(conn, lock, params))

    async def reclaim(self, max_pages: int) -> int:
        return await self._db.run(lambda conn, lock: _reclaim(conn, lock, max_pages))

    async def compact(self) -> bool:
        return await self._db.run(_compact)


def _count(conn: sqlite3.Connection, params: dict[str, Any]) -> PruneBatch:
    scanned = read_scan(conn.execute(QUERIES["prune_scan"], params).fetchall(), params["limit"])
    ids = {"ids": SQLITE.list_param(scanned.removable)}
    deliveries = conn.execute(QUERIES["prunable_deliveries"], ids).fetchone()[0]
    attempts = conn.execute(QUERIES["prunable_attempts"], ids).fetchone()[0]
    return batch(scanned, len(scanned.removable), int(deliveries), int(attempts))


def _prune(conn: sqlite3.Connection, lock: int | None, params: dict[str, Any]) -> PruneBatch:
    with without_fsync(conn), transaction(conn, lock):
        found = conn.execute(QUERIES["prune_scan"], params).fetchall()
        scanned = read_scan(found, params["limit"])
        if not scanned.removable:
            return batch(scanned, 0, 0, 0)
        ids = {"ids": SQLITE.list_param(scanned.removable)}
        deliveries = conn.execute(QUERIES["prune_deliveries"], ids).rowcount
        gone = [r[0] for r in conn.execute(QUERIES["prune_messages"], ids).fetchall()]
        gone_ids = {"ids": SQLITE.list_param(gone)}
        attempts = conn.execute(QUERIES["prune_attempts"], gone_ids).rowcount
        return batch(scanned, len(gone), deliveries, attempts)


def _reclaim(conn: sqlite3.Connection, lock: int | None, max_pages: int) -> int:
    """Free pages handed back, at most ``max_pages`` and only those beyond a reserve of
    ``FREE_RESERVE`` times the pages in use (0 unless the file is incremental). First a
    bounded merge of the payload word index, whose pruned words stay in older segments
    under delete markers until segments merge (``SEARCH_MERGE_PAGES``)."""
    with without_fsync(conn), transaction(conn, lock):
        conn.execute(QUERIES["merge_search_index"], {"pages": -SEARCH_MERGE_PAGES})
    if conn.execute(QUERIES["auto_vacuum"]).fetchone()[0] != INCREMENTAL:
        return 0
    free = int(conn.execute(QUERIES["free_pages"]).fetchone()[0])
    pages = int(conn.execute(QUERIES["page_count"]).fetchone()[0])
    surplus = min(max_pages, free - int((pages - free) * FREE_RESERVE))
    if surplus <= 0:
        return 0
    with write_lock(lock):
        # The pragma frees one page per step, and a cursor steps it once: executescript
        # (sqlite3_exec) runs it to its end, in a transaction of its own.
        conn.executescript(QUERIES["incremental_vacuum"].format(pages=surplus))
    return free - int(conn.execute(QUERIES["free_pages"]).fetchone()[0])


def _compact(conn: sqlite3.Connection, lock: int | None) -> bool:
    """``VACUUM`` cannot run in a transaction; the other hookline processes' writes queue on
    the lock file meanwhile, as behind any long write."""
    with write_lock(lock):
        for statement in QUERIES["compact"].split(";"):
            conn.execute(statement)
    return bool(conn.execute(QUERIES["auto_vacuum"]).fetchone()[0] == INCREMENTAL)
