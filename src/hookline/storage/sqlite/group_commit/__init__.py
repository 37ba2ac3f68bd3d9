"""SQLite's fast path: a group commit written as one statement over one JSON document.

``layout.py`` declares every row of the document; ``fixed_width.py`` encodes the rows
written most as fixed-width strings; ``document.py`` routes a batch and builds the
document; ``routes.py`` caches the endpoints it routes against, so that this happens
before the write lock; ``statement.sql`` is the statement, its positions rendered from the
layout at import (``statement.py``); ``writer.py`` writes a batch with them.
docs/performance-decisions.md says what each of these choices bought.
"""

from hookline.storage.sqlite.group_commit.writer import SqliteBatchWriter

__all__ = ["SqliteBatchWriter"]
