"""``hookline prune``: counts with --dry-run, removes and reports otherwise, refuses nonsense."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from hookline import cli
from hookline.domain import ids
from hookline.domain.tasks import TaskStatus
from hookline.storage.sqlite import SqliteStore
from tests.conftest import failed_outcome, make_app, make_endpoint, make_message, utcnow
from tests.integration.test_store_contract_tasks import task_for


def _seed(path: Path) -> tuple[str, str, str]:
    """An application, one finished message 10 days old and one finished today, and a
    background task that finished 10 days ago."""

    async def seed() -> tuple[str, str, str]:
        store = SqliteStore(str(path))
        await store.open()
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        when = utcnow() - timedelta(days=10)
        old = replace(
            make_message(app),
            id=ids.first_id_at(ids.MESSAGE, int(when.timestamp() * 1000)),
            timestamp=when,
        )
        new = make_message(app)
        await store.publish([old, new], utcnow())
        now = utcnow()
        claimed = await store.claim_due(10, now, now + timedelta(seconds=30), "w1")
        await store.complete([failed_outcome(c) for c in claimed])
        task = replace(
            task_for(None, app), status=TaskStatus.FINISHED, created_at=when, updated_at=when
        )
        await store.create_task(task)
        await store.close()
        return app.id, old.id, new.id

    return asyncio.run(seed())


def _exists(path: Path, app_id: str, msg_id: str) -> bool:
    async def read() -> bool:
        store = SqliteStore(str(path))
        await store.open()
        try:
            return await store.get_message(app_id, msg_id) is not None
        finally:
            await store.close()

    return asyncio.run(read())


def test_prune_dry_run_counts_then_prune_removes_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--dry-run prints what would go and keeps it; without it the old message goes, with its
    delivery and attempt, and the new one stays."""
    db = tmp_path / "prune.db"
    app_id, old, new = _seed(db)
    url = f"sqlite:///{db}"
    cli.main(["prune", "--database-url", url, "--older-than", "7d", "--dry-run"])
    out = capsys.readouterr().out
    assert "would remove 1 messages, 1 deliveries and 1 attempts older than 7d" in out
    assert "and 1 background tasks that ended before then" in out
    assert _exists(db, app_id, old)
    cli.main(["prune", "--database-url", url, "--older-than", "7d", "--vacuum"])
    out = capsys.readouterr().out
    assert "removed 1 messages, 1 deliveries and 1 attempts older than 7d" in out
    assert "and 1 background tasks that ended before then" in out
    assert "vacuumed the database" in out
    assert not _exists(db, app_id, old) and _exists(db, app_id, new)


def test_prune_uses_the_retention_setting_and_refuses_when_it_is_off(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without --older-than the configured horizon applies; with retention off and no
    horizon given, or a horizon that is not a duration, it exits with a message."""
    db = tmp_path / "prune.db"
    app_id, old, _ = _seed(db)
    url = f"sqlite:///{db}"
    cli.main(["prune", "--database-url", url, "--retention", "30d"])
    assert "removed 0 messages" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="retention is off"):
        cli.main(["prune", "--database-url", url, "--retention", "off"])
    with pytest.raises(SystemExit, match="invalid --older-than 'soon'"):
        cli.main(["prune", "--database-url", url, "--older-than", "soon"])
    assert _exists(db, app_id, old)
