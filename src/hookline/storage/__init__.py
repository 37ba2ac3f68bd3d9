"""Persistence: the ``Store`` contract and its backends (SQLite embedded, PostgreSQL later)."""
