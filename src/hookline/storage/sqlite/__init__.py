"""The embedded SQLite backend: one file, WAL mode, every write in a short transaction."""

from hookline.storage.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
