"""``SqliteClaimer``: a claim on SQLite, one transaction on the connection's thread.

SQLite has no ``FOR UPDATE SKIP LOCKED`` and no ``LATERAL``, so fairness across endpoints
is a loop: each enabled endpoint that is not busy offers its oldest due deliveries, one
index probe each, and the oldest of all those are leased. An ordered endpoint's deliveries
are offered by a second loop, one probe per sequence, which offers only each sequence's head
(``_due_heads``, docs/delivery.md "Ordered delivery"). The loop needs Python between
statements inside one write transaction, so it runs whole on the thread (``run``), not
statement by statement across awaits, which would hold the write lock through event-loop
turns. What it reads is assembled into claims by the repository, as PostgreSQL's is.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hookline.storage.parts import NOTHING, Leased
from hookline.storage.sql import SQLITE
from hookline.storage.sqlite.connector import QUERIES, SqliteConnector
from hookline.storage.sqlite.transactions import transaction


class SqliteClaimer:
    def __init__(self, connector: SqliteConnector) -> None:
        self._db = connector

    async def lease(self, params: dict[str, Any]) -> Leased:
        """Lease due deliveries (``claim_params``, ``busy``); the leased rows, and their
        messages and endpoints."""
        return await self._db.run(lambda conn, lock: _claim(conn, lock, params))


def _claim(conn: sqlite3.Connection, lock: int | None, params: dict[str, Any]) -> Leased:
    # A lease lost in a power cut only makes the delivery claimable again, so claims
    # skip the fsync that message and attempt commits keep.
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        with transaction(conn, lock):
            return _lease(conn, params)
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def _lease(conn: sqlite3.Connection, params: dict[str, Any]) -> Leased:
    busy = set(params["busy"])
    offered: list[tuple[int, str]] = []
    ready: set[str] = set()
    for (endpoint_id,) in conn.execute(QUERIES["enabled_endpoint_ids"]).fetchall():
        if endpoint_id in busy:
            continue
        ready.add(endpoint_id)
        probe = {**params, "endpoint_id": endpoint_id}
        offered += [(r[1], r[0]) for r in conn.execute(QUERIES["due_of_endpoint"], probe)]
    offered += _due_heads(conn, params, ready)
    offered.sort()
    chosen = [delivery_id for _, delivery_id in offered[: params["limit"]]]
    if not chosen:
        return NOTHING
    leased = conn.execute(QUERIES["lease_ids"], {**params, "ids": SQLITE.list_param(chosen)})
    leased_rows = leased.fetchall()
    if not leased_rows:
        return NOTHING
    msg_ids = SQLITE.list_param(list({r["msg_id"] for r in leased_rows}))
    endpoint_ids = SQLITE.list_param(list({r["endpoint_id"] for r in leased_rows}))
    messages = conn.execute(QUERIES["messages_by_ids"], {"ids": msg_ids}).fetchall()
    endpoints = conn.execute(QUERIES["endpoints_by_ids"], {"ids": endpoint_ids}).fetchall()
    return leased_rows, messages, endpoints


def _due_heads(
    conn: sqlite3.Connection, params: dict[str, Any], ready: set[str]
) -> list[tuple[int, str]]:
    """Ordered delivery: the due head of every sequence of an endpoint in ``ready``, stepping
    from one sequence to the next; of one endpoint, the ``per_endpoint`` oldest."""
    due: dict[str, list[tuple[int, str]]] = {}
    after = {"endpoint_id": "", "ordering_key": ""}
    query = QUERIES["next_sequence_head"]
    while (row := conn.execute(query, after).fetchone()) is not None:
        endpoint_id = row["endpoint_id"]
        after = {"endpoint_id": endpoint_id, "ordering_key": row["ordering_key"]}
        due_at = row["next_attempt_at"]  # None while the sequence is held
        if endpoint_id in ready and due_at is not None and due_at <= params["now"]:
            due.setdefault(endpoint_id, []).append((due_at, row["id"]))
    return [head for heads in due.values() for head in sorted(heads)[: params["per_endpoint"]]]
