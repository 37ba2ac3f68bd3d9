"""``SqliteBatchWriter``: a group commit's batch written to SQLite, as one statement when it can.

When the endpoints of every application in the batch were read before, the batch is
routed against them and its document built before the write lock is taken, and the
statement checks under the lock that no endpoint has changed since; other processes wait
only for the statement. Otherwise, or when one has changed, the endpoints are read and the
batch routed inside the locked transaction. If a request conflicts (a repeated eventId),
the batch is written again request by request in savepoints, so only it fails.

Attempt records ride in the publishes' commit (``complete``): every SQLite transaction takes
the one write lock and a commit, so the worker's records share the publishes' instead of
taking their own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hookline.storage import conflicts
from hookline.storage.base import AttemptOutcome
from hookline.storage.codec import RowCodec
from hookline.storage.group_commit import GroupCommit, PendingPublish, Routed
from hookline.storage.handoff import DeliveryRows
from hookline.storage.sqlite.connector import SqliteConnector
from hookline.storage.sqlite.group_commit.document import NO_RECORDS, Records, build, records
from hookline.storage.sqlite.group_commit.routes import Routes
from hookline.storage.sqlite.group_commit.statement import STATEMENTS
from hookline.storage.sqlite.transactions import transaction, write_lock

_ENDPOINTS_CHANGED = "hookline: endpoints changed"
_GROUP_COMMIT = STATEMENTS["group_commit"]


class SqliteBatchWriter:
    """Writes each batch of the group commit (``storage/group_commit.py``) on one connection,
    keeping the routes it read for the next."""

    def __init__(self, connector: SqliteConnector, codec: RowCodec) -> None:
        self._db = connector
        self._routes = Routes(codec)

    @staticmethod
    def prepare(conn: sqlite3.Connection) -> None:
        """Create the connection's temporary view and trigger that the statement writes to."""
        conn.executescript(STATEMENTS["create_group_commit"])

    async def write(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """One batch of the group commit, on the connection's thread."""
        return await self._db.run(
            lambda conn, lock: self._write(conn, lock, batch, deliveries, outcomes)
        )

    async def complete(self, outcomes: Sequence[AttemptOutcome], group: GroupCommit) -> None:
        """Recorded in the next group commit, beside whatever publishes it carries."""
        await group.record(outcomes)

    def _write(
        self,
        conn: sqlite3.Connection,
        lock: int | None,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """Every request of the batch and the attempt records that queued meanwhile, in one
        statement and one commit; if a request conflicts, request by request."""
        recorded = records(outcomes)
        start = deliveries.mark()
        try:
            routes = self._routes.covering(batch)
            if routes is not None:
                routed, params = build(batch, deliveries, recorded, routes)
                try:
                    with write_lock(lock):
                        # Outside a transaction the statement commits itself: the write lock
                        # is held for one statement step.
                        conn.execute(_GROUP_COMMIT, params)
                    return list(routed)
                except sqlite3.IntegrityError as exc:
                    if _ENDPOINTS_CHANGED not in str(exc):
                        raise
                    deliveries.undo(start)
            with transaction(conn, lock):
                routes = self._routes.refresh(conn, batch)
                routed, params = build(batch, deliveries, recorded, routes)
                conn.execute(_GROUP_COMMIT, params)
                return list(routed)
        except sqlite3.IntegrityError:
            deliveries.undo(start)
        return self._one_by_one(conn, lock, batch, deliveries, recorded)

    def _one_by_one(
        self,
        conn: sqlite3.Connection,
        lock: int | None,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        recorded: Records,
    ) -> list[Routed | Exception]:
        results: list[Routed | Exception] = []
        with transaction(conn, lock):
            routes = self._routes.refresh(conn, batch)
            for request in batch:
                conn.execute("SAVEPOINT publish")
                mark = deliveries.mark()
                try:
                    routed, params = build([request], deliveries, NO_RECORDS, routes)
                    conn.execute(_GROUP_COMMIT, params)
                    results += routed
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO publish")
                    deliveries.undo(mark)
                    results.append(conflicts.duplicate_event_id())
                conn.execute("RELEASE publish")
            _, params = build([], deliveries, recorded, routes)
            conn.execute(_GROUP_COMMIT, params)
        return results
