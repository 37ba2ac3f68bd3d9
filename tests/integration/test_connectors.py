"""Each dialect's connector is the one place its driver's errors become domain errors: a
unique violation is a ``Conflict`` worded from what refused it, trouble ``Unavailable``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hookline.domain.errors import Conflict, Unavailable
from hookline.storage import conflicts, rows
from hookline.storage.parts import Connector
from hookline.storage.postgres.connector import PostgresConnector
from hookline.storage.sqlite import connector as sqlite_connector
from hookline.storage.sqlite.connector import SqliteConnector
from tests.conftest import POSTGRES_URL, database_url, make_app

UID_CLASH = "An object with this uid already exists"
OTHER_CLASH = "The object conflicts with an existing one"


@pytest.fixture
async def connector(store_location: tuple[str, str]) -> AsyncIterator[Connector]:
    """An open connector of each dialect on a freshly migrated database."""
    backend, where = store_location
    opened: Connector
    if backend == "postgres":
        opened = PostgresConnector(where, pool_size=2)
    else:
        opened = SqliteConnector(where)
    await opened.open()
    yield opened
    await opened.close()


def test_the_wording_of_a_conflict_comes_from_what_refused_the_write() -> None:
    """A uid column or constraint reads as a uid clash; anything else as a plain conflict."""
    assert conflicts.unique_violation("applications.uid").detail == UID_CLASH
    assert conflicts.unique_violation("endpoints_app_id_uid_key").detail == UID_CLASH
    assert conflicts.unique_violation("applications.id").detail == OTHER_CLASH
    assert conflicts.unique_violation("").detail == OTHER_CLASH


async def test_a_repeated_uid_is_a_uid_conflict(connector: Connector) -> None:
    """The driver's unique violation on a uid comes out as Conflict, worded for the uid."""
    await connector.execute("insert_application", rows.application_params(make_app(uid="u")))
    with pytest.raises(Conflict) as info:
        await connector.execute("insert_application", rows.application_params(make_app(uid="u")))
    assert (info.value.code, info.value.detail) == ("conflict", UID_CLASH)


async def test_a_repeated_key_is_a_plain_conflict(connector: Connector) -> None:
    """A unique violation on anything but a uid comes out as Conflict with the plain wording."""
    app = make_app(uid="first")
    await connector.execute("insert_application", rows.application_params(app))
    again = rows.application_params(make_app(uid="second")) | {"id": app.id}
    with pytest.raises(Conflict) as info:
        await connector.execute("insert_application", again)
    assert info.value.detail == OTHER_CLASH


async def test_sqlite_busy_beyond_its_timeout_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that cannot get SQLite's lock in time is Unavailable, not a driver error."""
    monkeypatch.setattr(sqlite_connector, "BUSY_TIMEOUT_MS", 0)
    path = tmp_path / "busy.db"
    connector = SqliteConnector(str(path))
    await connector.open()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Unavailable, match="database is locked"):
            await connector.execute("unregister_worker", {"worker_id": "w"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
        await connector.close()


async def test_sqlite_used_before_it_is_open_is_unavailable(tmp_path: Path) -> None:
    """A query on a connector that is not open says the store is unavailable."""
    connector = SqliteConnector(str(tmp_path / "closed.db"))
    with pytest.raises(Unavailable, match="not open"):
        await connector.query("SELECT 1", {})
    await connector.close()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
async def test_postgres_that_cannot_be_reached_is_unavailable() -> None:
    """A database that cannot be connected to is Unavailable, not an asyncpg error."""
    connector = PostgresConnector(database_url("hookline_no_such_database"), pool_size=1)
    with pytest.raises(Unavailable, match="cannot connect"):
        await connector.query("SELECT 1", {})
    await connector.close()


@pytest.mark.skipif(POSTGRES_URL is None, reason="needs HOOKLINE_TEST_POSTGRES_URL (CI sets it)")
async def test_postgres_deadlock_victim_is_unavailable(postgres_url: str) -> None:
    """Of two transactions that lock two rows in opposite orders, the one PostgreSQL rolls back
    comes out as Unavailable, which callers back off and retry, not as a driver error that
    would take a worker down; the other commits."""
    connector = PostgresConnector(postgres_url, pool_size=2)
    await connector.open()
    await connector.query("CREATE TABLE probe (k INTEGER PRIMARY KEY)", {})
    await connector.query("INSERT INTO probe VALUES (1), (2)", {})
    locked = {1: asyncio.Event(), 2: asyncio.Event()}

    async def cross(mine: int, other: int) -> None:
        async with connector.transaction() as tx:
            await tx.query("SET LOCAL deadlock_timeout = '20ms'", {})
            await tx.query(f"UPDATE probe SET k = k WHERE k = {mine}", {})
            locked[mine].set()
            await locked[other].wait()
            await tx.query(f"UPDATE probe SET k = k WHERE k = {other}", {})

    try:
        results = await asyncio.gather(cross(1, 2), cross(2, 1), return_exceptions=True)
    finally:
        await connector.close()
    assert sorted(type(r).__name__ for r in results) == ["NoneType", "Unavailable"]
    refused = next(r for r in results if isinstance(r, Unavailable))
    assert "deadlock" in str(refused)
