"""``SqliteClaimer``: a claim on SQLite, one transaction on the connection's thread.

SQLite has no ``FOR UPDATE SKIP LOCKED`` and no ``LATERAL``, so fairness is a loop: each
enabled endpoint that is not busy offers its oldest due deliveries, one index probe each,
and they are taken in turns across applications (``fair_order``), as on PostgreSQL. An
ordered endpoint's deliveries are offered by a second loop, one probe per sequence, which
offers only each sequence's head (``_due_heads``, docs/delivery.md "Ordered delivery"). The
loops need Python between statements inside one write transaction, so they run whole on the
thread (``run``), not statement by statement across awaits, which would hold the write lock
through event-loop turns. What they read is assembled into claims by the repository, as
PostgreSQL's is.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from hookline.storage.parts import NOTHING, Leased
from hookline.storage.sql import SQLITE
from hookline.storage.sqlite.connector import QUERIES, SqliteConnector
from hookline.storage.sqlite.transactions import transaction, without_fsync


class SqliteClaimer:
    def __init__(self, connector: SqliteConnector) -> None:
        self._db = connector

    async def lease(self, params: dict[str, Any]) -> Leased:
        """Lease due deliveries (``claim_params``, ``busy``); the leased rows, and their
        messages and endpoints."""
        return await self._db.run(lambda conn, lock: _claim(conn, lock, params))


def _claim(conn: sqlite3.Connection, lock: int | None, params: dict[str, Any]) -> Leased:
    with without_fsync(conn), transaction(conn, lock):
        return _lease(conn, params)


def _lease(conn: sqlite3.Connection, params: dict[str, Any]) -> Leased:
    busy = set(params["busy"])
    caps = dict(zip(params["capped"], params["caps"], strict=True))
    per_endpoint = params["per_endpoint"]
    offered: dict[str, list[tuple[int, int, str]]] = {}
    ready: dict[str, str] = {}
    """Endpoints that may be claimed from, and their application."""
    for endpoint_id, app_id in conn.execute(QUERIES["enabled_endpoint_ids"]).fetchall():
        if endpoint_id in busy:
            continue
        ready[endpoint_id] = app_id
        probe = {
            **params,
            "endpoint_id": endpoint_id,
            "per_endpoint": caps.get(endpoint_id, per_endpoint),
        }
        rows = conn.execute(QUERIES["due_of_endpoint"], probe).fetchall()
        offered.setdefault(app_id, []).extend(
            (turn, due, delivery_id) for turn, (delivery_id, due) in enumerate(rows)
        )
    for endpoint_id, heads in _due_heads(conn, params["now"], ready).items():
        cap = caps.get(endpoint_id, per_endpoint)
        offered.setdefault(ready[endpoint_id], []).extend(
            (turn, due, delivery_id) for turn, (due, delivery_id) in enumerate(heads[:cap])
        )
    chosen = [delivery_id for *_, delivery_id in fair_order(offered)[: params["limit"]]]
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


def fair_order(
    offered: dict[str, list[tuple[int, int, str]]],
) -> list[tuple[int, int, str]]:
    """The offers of every application, ``(endpoint turn, due, id)``, in claim order: each
    application's first turn (its endpoints' oldest offers, oldest first), then each one's
    second, and so on, each round oldest first; PostgreSQL's ``claim_due`` orders the same."""
    rounds: list[tuple[int, int, str]] = []
    for offers in offered.values():
        offers.sort()
        rounds += [
            (app_turn, due, delivery_id) for app_turn, (_, due, delivery_id) in enumerate(offers)
        ]
    rounds.sort()
    return rounds


def _due_heads(
    conn: sqlite3.Connection, now: int, ready: dict[str, str]
) -> dict[str, list[tuple[int, str]]]:
    """Ordered delivery: the due heads ``(due, id)`` of the sequences of each endpoint in
    ``ready``, oldest first, stepping from one sequence to the next."""
    due: dict[str, list[tuple[int, str]]] = {}
    after = {"endpoint_id": "", "ordering_key": ""}
    query = QUERIES["next_sequence_head"]
    while (row := conn.execute(query, after).fetchone()) is not None:
        endpoint_id = row["endpoint_id"]
        after = {"endpoint_id": endpoint_id, "ordering_key": row["ordering_key"]}
        due_at = row["next_attempt_at"]  # None while the sequence is held
        if endpoint_id in ready and due_at is not None and due_at <= now:
            due.setdefault(endpoint_id, []).append((due_at, row["id"]))
    for heads in due.values():
        heads.sort()
    return due
