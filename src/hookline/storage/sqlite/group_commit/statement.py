"""The group commit's SQL (``statement.sql``), its positions rendered from ``layout.py`` once,
at import."""

from __future__ import annotations

from hookline.storage.queries import load_queries
from hookline.storage.sqlite.group_commit.layout import render

STATEMENTS = {
    name: render(text)
    for name, text in load_queries("hookline.storage.sqlite.group_commit", "statement.sql").items()
}
