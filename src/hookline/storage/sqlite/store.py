"""``SqliteStore``: the embedded backend, one file in WAL mode.

The repository (``storage/repository.py``) composed over SQLite's parts: the connector
that owns the connection's thread, the group commit's fast path (``group_commit/``), which
also carries the worker's attempt records, the claimer's per-endpoint probes, and the
pruner's short batches with incremental vacuum.
"""

from __future__ import annotations

from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.storage.codec import PLAIN, RowCodec
from hookline.storage.repository import SqlRepository
from hookline.storage.sqlite.claimer import SqliteClaimer
from hookline.storage.sqlite.connector import SqliteConnector, path_from_url
from hookline.storage.sqlite.group_commit import SqliteBatchWriter
from hookline.storage.sqlite.pruner import SqlitePruner


class SqliteStore(SqlRepository):
    """The ``Store`` contract on one SQLite file."""

    def __init__(
        self,
        path: str,
        codec: RowCodec = PLAIN,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        connector = SqliteConnector(path, on_connect=SqliteBatchWriter.prepare)
        writer = SqliteBatchWriter(connector, codec)
        claimer = SqliteClaimer(connector)
        pruner = SqlitePruner(connector)
        super().__init__(
            connector,
            writer,
            claimer,
            pruner,
            codec,
            backend="sqlite",
            instrumentation=instrumentation,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        codec: RowCodec = PLAIN,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> SqliteStore:
        return cls(path_from_url(url), codec, instrumentation)
