"""``PostgresClaimer``: a claim on PostgreSQL, one statement and the reads it needs.

The claim itself is one ``UPDATE … FOR UPDATE SKIP LOCKED`` (``claim_due``), fair across
endpoints through a ``LATERAL`` probe of each; the messages and endpoints of what it
leased are read in the same transaction. The repository assembles them into claims, as
it does SQLite's.
"""

from __future__ import annotations

from typing import Any

from hookline.storage.parts import NOTHING, Leased
from hookline.storage.postgres.connector import PostgresConnector


class PostgresClaimer:
    def __init__(self, connector: PostgresConnector) -> None:
        self._db = connector

    async def lease(self, params: dict[str, Any]) -> Leased:
        """Lease due deliveries (``claim_params``, ``busy``); the leased rows, and their
        messages and endpoints."""
        async with self._db.transaction() as tx:
            leased = await tx.query("claim_due", params)
            if not leased:
                return NOTHING
            msg_ids = list({r["msg_id"] for r in leased})
            endpoint_ids = list({r["endpoint_id"] for r in leased})
            messages = await tx.query("messages_by_ids", {"ids": msg_ids})
            endpoints = await tx.query("endpoints_by_ids", {"ids": endpoint_ids})
        return leased, messages, endpoints
