"""The endpoints a batch routes to, cached so that a batch is routed before the write lock."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from hookline.domain.models import Endpoint
from hookline.storage import rows
from hookline.storage.codec import RowCodec
from hookline.storage.group_commit import PendingPublish
from hookline.storage.sqlite.connector import QUERIES
from hookline.storage.sqlite.group_commit.statement import STATEMENTS

ROUTES_CACHED_APPS = 4096
"""Applications whose endpoints are kept for routing before the write lock."""

_ACTIVE_ENDPOINTS = QUERIES["active_endpoints"]


class Routes:
    """The enabled endpoints of recently published-to applications, as of one endpoint
    version (the counter of migration 0003, which every endpoint change moves)."""

    def __init__(self, codec: RowCodec) -> None:
        self.version: int | None = None
        self.by_app: dict[str, list[Endpoint]] = {}
        self._codec = codec

    def covering(self, batch: Sequence[PendingPublish]) -> Routes | None:
        """Self, if every application of the batch is known; else None."""
        if self.version is None:
            return None
        by_app = self.by_app
        for request in batch:
            for msg in request.messages:
                if msg.app_id not in by_app:
                    return None
        return self

    def refresh(self, conn: sqlite3.Connection, batch: Sequence[PendingPublish]) -> Routes:
        """Read, inside the write transaction, what the batch's applications route to."""
        version = int(conn.execute(STATEMENTS["endpoint_version"]).fetchone()[0])
        if version != self.version or len(self.by_app) >= ROUTES_CACHED_APPS:
            self.version = version
            self.by_app = {}
        by_app = self.by_app
        codec = self._codec
        for request in batch:
            for msg in request.messages:
                if msg.app_id not in by_app:
                    by_app[msg.app_id] = [
                        rows.endpoint_from(r, codec)
                        for r in conn.execute(_ACTIVE_ENDPOINTS, {"app_id": msg.app_id})
                    ]
        return self
