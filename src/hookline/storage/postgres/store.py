"""``PostgresStore``: the scale-out backend on asyncpg.

The repository (``storage/repository.py``) composed over PostgreSQL's parts: the pooled
connector, the batch writer's array statements, the claimer's one ``UPDATE … FOR UPDATE
SKIP LOCKED``, and the pruner's batches. Workers are woken by a trigger on ``deliveries``
(``listen``).
"""

from __future__ import annotations

from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.storage.codec import PLAIN, RowCodec
from hookline.storage.postgres.claimer import PostgresClaimer
from hookline.storage.postgres.connector import PostgresConnector
from hookline.storage.postgres.pruner import PostgresPruner
from hookline.storage.postgres.writer import PostgresBatchWriter
from hookline.storage.repository import SqlRepository


class PostgresStore(SqlRepository):
    """The ``Store`` contract on PostgreSQL; safe for many processes on many machines."""

    def __init__(
        self,
        url: str,
        pool_size: int = 10,
        codec: RowCodec = PLAIN,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        connector = PostgresConnector(url, pool_size)
        writer = PostgresBatchWriter(connector, codec)
        claimer = PostgresClaimer(connector)
        pruner = PostgresPruner(connector)
        super().__init__(
            connector,
            writer,
            claimer,
            pruner,
            codec,
            backend="postgresql",
            instrumentation=instrumentation,
        )
