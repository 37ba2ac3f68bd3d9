"""SQLite reuses the space pruning frees: the file stops growing across prune cycles, a new
database gives free pages back incrementally, and an older one is switched once by compact."""

from __future__ import annotations

import sqlite3
from datetime import timedelta
from pathlib import Path

from hookline.delivery.retention import prune
from hookline.domain.models import Application
from hookline.storage.sqlite import SqliteStore
from tests.conftest import failed_outcome, make_app, make_endpoint, make_message, utcnow

PAYLOAD = b'{"data":"' + b"x" * 3000 + b'"}'


def _pragma(path: Path, name: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"PRAGMA {name}").fetchone()[0])
    finally:
        conn.close()


async def _cycle(store: SqliteStore, app: Application, count: int) -> None:
    """Publish ``count`` 3 KB messages, finish every delivery, then prune them all."""
    await store.publish([make_message(app, payload=PAYLOAD) for _ in range(count)], utcnow())
    now = utcnow()
    while claimed := await store.claim_due(500, now, now + timedelta(seconds=30), "w1"):
        await store.complete([failed_outcome(c) for c in claimed])
    report = await prune(store, utcnow() + timedelta(seconds=1), batch_messages=200)
    assert report.messages == count


async def test_the_file_stops_growing_across_prune_cycles(tmp_path: Path) -> None:
    """After the first cycle, publishing and pruning as much again leaves the file no larger:
    the pages pruning freed are reused or given back, beyond a reserve of a quarter of the
    pages in use."""
    path = tmp_path / "space.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        await _cycle(store, app, 600)
        first = _pragma(path, "page_count")
        for _ in range(3):
            await _cycle(store, app, 600)
            assert _pragma(path, "page_count") <= first
        free = _pragma(path, "freelist_count")
        assert free <= (_pragma(path, "page_count") - free) // 4 + 1
    finally:
        await store.close()


async def test_a_new_database_gives_free_pages_back_after_pruning(tmp_path: Path) -> None:
    """A database hookline created is in incremental auto-vacuum mode, and pruning hands the
    pages it freed back to the file system (the file shrinks)."""
    path = tmp_path / "new.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        assert _pragma(path, "auto_vacuum") == 2
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        await store.publish([make_message(app, payload=PAYLOAD) for _ in range(400)], utcnow())
        full = _pragma(path, "page_count")
        now = utcnow()
        while claimed := await store.claim_due(500, now, now + timedelta(seconds=30), "w1"):
            await store.complete([failed_outcome(c) for c in claimed])
        report = await prune(store, utcnow() + timedelta(seconds=1))
        assert report.reclaimed_pages > 0
        assert _pragma(path, "page_count") < full // 2
    finally:
        await store.close()


async def test_compact_switches_an_older_database_to_incremental_vacuum(tmp_path: Path) -> None:
    """A database made before hookline set incremental auto-vacuum is rebuilt into it once,
    keeping its rows."""
    path = tmp_path / "old.db"
    store = SqliteStore(str(path))
    await store.open()
    app = make_app()
    await store.create_application(app)
    await store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    conn.close()
    assert _pragma(path, "auto_vacuum") == 0
    store = SqliteStore(str(path))
    await store.open()
    try:
        assert await store.reclaim_space(100) == 0
        assert await store.compact() is True
        assert _pragma(path, "auto_vacuum") == 2
        assert await store.get_application(app.id) == app
    finally:
        await store.close()
