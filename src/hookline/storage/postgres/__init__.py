"""The PostgreSQL backend: many API and worker processes on many machines, one database."""

from hookline.storage.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
