"""Named SQL blocks loaded from ``.sql`` files, as procrastinate keeps them.

A file holds blocks that each start with ``-- name: <name>``. The queries that read the
same in both dialects live once, in ``storage/queries.sql``; each dialect's own
``queries.sql`` holds only the queries that differ there or exist only there, and wins
over a shared block of the same name. The store code refers to queries by meaning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
SHARED_PACKAGE = "hookline.storage"
QUERIES_FILE = "queries.sql"


def load_queries(package: str, filename: str) -> dict[str, str]:
    """The blocks of one file, by name."""
    text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"{filename}: query {name!r} is defined twice")
        queries[name] = body.strip()
    return queries


def merge_queries(
    shared: Mapping[str, str], own: Mapping[str, str], dialect: str
) -> dict[str, str]:
    """``shared`` with ``own`` over it. A block repeated verbatim is refused: it belongs in
    the shared file only, or the two copies would drift apart unnoticed."""
    for name, text in own.items():
        if shared.get(name) == text:
            raise ValueError(
                f"{dialect} {QUERIES_FILE}: query {name!r} repeats the shared one verbatim"
            )
    return {**shared, **own}


def dialect_queries(package: str) -> dict[str, str]:
    """Every named query of the dialect in ``package``: the shared ones and its own."""
    return merge_queries(
        load_queries(SHARED_PACKAGE, QUERIES_FILE), load_queries(package, QUERIES_FILE), package
    )
