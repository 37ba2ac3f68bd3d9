"""Schema versions: the migrations rebuild schema.sql exactly, and mismatches are refused."""

from __future__ import annotations

import re
import sqlite3
import uuid
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from hookline.domain import ids
from hookline.storage.migrations import SchemaAhead, SchemaBehind, load_migrations
from hookline.storage.postgres import PostgresStore
from hookline.storage.sqlite import SqliteStore
from tests.conftest import LANGUAGE_COLLATION, POSTGRES_URL, database_url


def _sqlite_schema(path: Path) -> list[tuple[str, str, str]]:
    conn = sqlite3.connect(path)
    try:
        found = conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name"
        ).fetchall()
    finally:
        conn.close()
    return [(kind, name, _normalized(sql)) for kind, name, sql in found]


def _normalized(sql: str) -> str:
    """Whitespace is not schema: ``ALTER TABLE … ADD COLUMN`` splices its column into the
    stored ``CREATE TABLE`` after the last column's line break, before the comma."""
    return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", sql)).strip()


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


POSTGRES_SCHEMA_QUERY = """
SELECT 'column', c.table_name || '.' || c.column_name,
       c.data_type || ' ' || c.is_nullable || ' ' || coalesce(c.column_default, '')
       || ' ' || coalesce(c.collation_name, '')
FROM information_schema.columns AS c WHERE c.table_schema = 'public'
UNION ALL
SELECT 'index', i.indexname, i.indexdef FROM pg_indexes AS i WHERE i.schemaname = 'public'
UNION ALL
SELECT 'constraint', tc.table_name || '.' || tc.constraint_name, tc.constraint_type
FROM information_schema.table_constraints AS tc
WHERE tc.table_schema = 'public' AND tc.constraint_name NOT LIKE '%_not_null'
UNION ALL
SELECT 'trigger', t.tgname, pg_get_triggerdef(t.oid)
FROM pg_trigger AS t JOIN pg_class AS r ON r.oid = t.tgrelid
JOIN pg_namespace AS n ON n.oid = r.relnamespace
WHERE n.nspname = 'public' AND NOT t.tgisinternal
UNION ALL
SELECT 'function', p.proname, pg_get_functiondef(p.oid)
FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace WHERE n.nspname = 'public'
ORDER BY 1, 2, 3
"""


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
async def test_postgres_migrations_build_the_same_schema_as_schema_sql() -> None:
    """Applying every PostgreSQL migration in order gives exactly the schema in schema.sql,
    collations included, on a database with a language collation."""
    names = [f"hookline_schema_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}" {LANGUAGE_COLLATION}')
        reference = await asyncpg.connect(database_url(names[0]))
        await reference.execute(
            resources.files("hookline.storage.postgres").joinpath("schema.sql").read_text()
        )
        expected = [tuple(r) for r in await reference.fetch(POSTGRES_SCHEMA_QUERY)]
        await reference.close()
        store = PostgresStore(database_url(names[1]), pool_size=1)
        assert await store.migrate() == [
            m.version for m in load_migrations("hookline.storage.postgres")
        ]
        await store.close()
        migrated = await asyncpg.connect(database_url(names[1]))
        actual = [tuple(r) for r in await migrated.fetch(POSTGRES_SCHEMA_QUERY)]
        await migrated.close()
        assert actual == expected
        assert len(actual) > 50
    finally:
        for name in names:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
async def test_postgres_ids_sort_by_time_on_a_database_with_a_language_collation() -> None:
    """Ids minted over a year sort in the order they were minted once migrated, although the
    database's own collation would not sort them so: every text id column compares bytes."""
    name = f"hookline_order_{uuid.uuid4().hex[:10]}"
    minted = [ids.first_id_at("msg", 1_700_000_000_000 + n * 157_000_000) for n in range(200)]
    admin = await asyncpg.connect(POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" {LANGUAGE_COLLATION}')
        store = PostgresStore(database_url(name), pool_size=1)
        await store.migrate()
        await store.close()
        db = await asyncpg.connect(database_url(name))
        try:
            await db.executemany(
                "INSERT INTO messages (id, app_id, event_type, created_at)"
                " VALUES ($1, 'a', 'e', 0)",
                [(i,) for i in reversed(minted)],
            )
            by_language = await db.fetch('SELECT id FROM messages ORDER BY id COLLATE "default"')
            assert [r["id"] for r in by_language] != minted
            assert [
                r["id"] for r in await db.fetch("SELECT id FROM messages ORDER BY id")
            ] == minted
            other = await db.fetch(
                "SELECT table_name, column_name FROM information_schema.columns"
                " WHERE table_schema = 'public' AND data_type = 'text'"
                " AND (column_name = 'id' OR column_name LIKE '%\\_id')"
                " AND collation_name IS DISTINCT FROM 'C'"
            )
            assert [tuple(r) for r in other] == []
        finally:
            await db.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
