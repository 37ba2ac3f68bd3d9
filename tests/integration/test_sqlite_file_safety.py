"""The SQLite file's own protection: created owner-only (with its WAL and shared-memory
files), deleted content overwritten (``secure_delete``), a shared existing file reported."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hookline.storage.codec import PLAIN
from hookline.storage.sqlite import SqliteStore
from tests.conftest import make_app, make_endpoint


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 0, so a file's mode is what its creator asked for and nothing hides it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _file_bytes(path: Path) -> bytes:
    files = [Path(f"{path}{suffix}") for suffix in ("", "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.usefixtures("permissive_umask")
async def test_a_new_database_and_its_wal_and_shm_files_are_owner_only(tmp_path: Path) -> None:
    """Even under umask 0, the database, -wal, -shm and lock files are 0600."""
    path = tmp_path / "hookline.db"
    store = SqliteStore(str(path), codec=PLAIN)
    await store.open()
    try:
        app = make_app()
        await store.create_application(app)
        await store.create_endpoint(make_endpoint(app))
        for suffix in ("", "-wal", "-shm", ".lock"):
            assert _mode(Path(f"{path}{suffix}")) == 0o600, suffix
    finally:
        await store.close()


async def test_deleted_secrets_do_not_linger_in_the_file(tmp_path: Path) -> None:
    """secure_delete is on: an endpoint stored in plaintext and then deleted leaves no trace
    of its secret in the file's free pages."""
    path = tmp_path / "hookline.db"
    store = SqliteStore(str(path), codec=PLAIN)
    await store.open()
    app = make_app()
    await store.create_application(app)
    ep = make_endpoint(app)
    await store.create_endpoint(ep)
    (found,) = await store._db.query("PRAGMA secure_delete", {})
    assert found[0] == 1
    await store.delete_endpoint(app.id, ep.id)
    await store.close()
    assert ep.keys[0].secret.encode() not in _file_bytes(path)


async def test_an_existing_file_others_can_read_is_reported_and_left_as_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """hookline does not change an operator's file mode, but warns that it is shared."""
    path = tmp_path / "hookline.db"
    path.touch()
    path.chmod(0o644)
    store = SqliteStore(str(path), codec=PLAIN)
    with caplog.at_level(logging.WARNING, logger="hookline.sqlite"):
        await store.open()
    await store.close()
    assert "chmod 600" in caplog.text and _mode(path) == 0o644
