"""``PostgresBatchWriter``: a group commit's batch, and a worker's attempt records, written to
PostgreSQL as one statement per table over ``unnest`` arrays.

``executemany`` costs the server one execution per row; an array statement costs one per
table. A batch goes in one transaction; if one request conflicts (a repeated eventId), the
batch is written again one transaction per request, so only that one fails. Attempt
records take their own transactions (``complete``): with PostgreSQL there is no single
write lock to share, so a worker does not wait for the next publish commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hookline.domain.errors import Conflict
from hookline.domain.models import Endpoint
from hookline.storage import conflicts, rows
from hookline.storage.base import AttemptOutcome
from hookline.storage.codec import RowCodec
from hookline.storage.group_commit import GroupCommit, PendingPublish, Routed, route_batch
from hookline.storage.handoff import DeliveryRows
from hookline.storage.postgres.connector import PostgresConnector, PostgresHandle


class PostgresBatchWriter:
    def __init__(self, connector: PostgresConnector, codec: RowCodec) -> None:
        self._db = connector
        self._codec = codec

    async def write(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """The batch in one transaction; if a request conflicts, one per request.
        ``outcomes`` is always empty here (``complete``)."""
        start = deliveries.mark()
        try:
            async with self._db.transaction() as tx:
                return list(await self._publish(tx, batch, deliveries))
        except Conflict:
            deliveries.undo(start)
        results: list[Routed | Exception] = []
        for request in batch:
            mark = deliveries.mark()
            try:
                async with self._db.transaction() as tx:
                    results += await self._publish(tx, [request], deliveries)
            except Conflict:
                deliveries.undo(mark)
                results.append(conflicts.duplicate_event_id())
            except Exception as exc:
                deliveries.undo(mark)
                results.append(exc)
        return results

    async def _publish(
        self, tx: PostgresHandle, batch: Sequence[PendingPublish], deliveries: DeliveryRows
    ) -> list[Routed]:
        by_app: dict[str, list[Endpoint]] = {}
        for app_id in {msg.app_id for request in batch for msg in request.messages}:
            active = await tx.query("active_endpoints", {"app_id": app_id})
            by_app[app_id] = [rows.endpoint_from(r, self._codec) for r in active]
        routed, pending, leased, ordered = route_batch(batch, by_app, deliveries)
        messages = [rows.message_params(msg) for request in batch for msg in request.messages]
        await tx.execute_arrays("insert_messages", messages)
        if pending or leased or ordered:
            await tx.execute_arrays("insert_deliveries", pending + leased + ordered)
        completions = [
            rows.completion_params(r.completion) for r in batch if r.completion is not None
        ]
        if completions:
            await tx.execute_many("idempotency_finish", completions)
        return routed

    async def complete(self, outcomes: Sequence[AttemptOutcome], group: GroupCommit) -> None:
        """A worker's batch of outcomes in three array statements (attempts, deliveries,
        rollups), in its own transaction."""
        if not outcomes:
            return
        attempts = [rows.attempt_params(o.attempt) for o in outcomes]
        finishes = [rows.finish_params(o) for o in outcomes]
        disables: list[dict[str, Any]] = [
            {"endpoint_id": o.claimed.endpoint.id, "now": rows.to_ms(o.attempt.timestamp)}
            for o in outcomes
            if o.disable_endpoint
        ]
        fallbacks = [rows.fallback_params(o.fallback) for o in outcomes if o.fallback]
        stood_in = [rows.stood_in_params(o) for o in outcomes if o.attempt.fallback_for]
        rollups = rows.rollup_params(outcomes)
        async with self._db.transaction() as tx:
            await tx.execute_arrays("insert_attempts", attempts)
            await tx.execute_arrays("finish_deliveries", finishes)
            await tx.execute_arrays("upsert_rollups", rollups)
            if disables:
                await tx.execute_many("disable_endpoint", disables)
            # Fallback destinations (docs/delivery.md): rare, so one statement per row.
            if stood_in:
                await tx.execute_many("mark_stood_in", stood_in)
            if fallbacks:
                await tx.execute_many("insert_fallback", fallbacks)
