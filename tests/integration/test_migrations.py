"""Schema versions: the migrations rebuild schema.sql exactly, and mismatches are refused."""

from __future__ import annotations

import re
import sqlite3
from importlib import resources
from pathlib import Path

import pytest

from hookline.storage.migrations import SchemaAhead, SchemaBehind, load_migrations
from hookline.storage.sqlite import SqliteStore


def _sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, re.sub(r"\s+", " ", sql).strip()) for kind, name, sql in found]


async def test_sqlite_migrations_build_the_same_schema_as_schema_sql(tmp_path: Path) -> None:
    """Applying every SQLite migration in order gives exactly the schema in schema.sql."""
    reference = tmp_path / "reference.db"
    conn = sqlite3.connect(reference)
    conn.executescript(
        resources.files("hookline.storage.sqlite").joinpath("schema.sql").read_text()
    )
    conn.close()
    migrated = tmp_path / "migrated.db"
    store = SqliteStore(str(migrated))
    applied = await store.migrate()
    await store.close()
    assert applied == [m.version for m in load_migrations("hookline.storage.sqlite")]
    assert sorted(_sqlite_schema(migrated)) == sorted(_sqlite_schema(reference))


async def test_migrate_twice_applies_nothing_the_second_time(tmp_path: Path) -> None:
    """`hookline migrate` is idempotent."""
    store = SqliteStore(str(tmp_path / "twice.db"))
    assert await store.migrate() != []
    assert await store.migrate() == []
    await store.close()


@pytest.mark.parametrize(("version", "error"), [(0, SchemaBehind), (99, SchemaAhead)])
async def test_open_refuses_a_schema_of_another_version(
    tmp_path: Path, version: int, error: type[Exception]
) -> None:
    """A database behind or ahead of this code is refused with what to do about it."""
    path = tmp_path / "versioned.db"
    store = SqliteStore(str(path))
    await store.open()
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = ?", (version,))
    conn.commit()
    conn.close()
    again = SqliteStore(str(path))
    with pytest.raises(error) as info:
        await again.open()
    await again.close()
    if error is SchemaBehind:
        assert "hookline migrate" in str(info.value)
