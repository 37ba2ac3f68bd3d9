"""``SqliteConnector``: one SQLite file in WAL mode, on one thread that owns the connection.

sqlite3 is synchronous, so every call runs on one dedicated thread: the event loop never
blocks, and all writes are serialized in-process without lock contention. Other processes
may open the same file (``serve --no-worker`` beside ``worker``); WAL and ``busy_timeout``
make that safe, one writer at a time, queued on a lock file (``transactions.py``).

This is the one place where sqlite3's errors become domain errors: a refused write is a
``Conflict`` (worded in ``storage/conflicts.py``), a busy or broken database
``Unavailable``. What must run with Python between statements in one transaction (the
batch writer, the claimer) runs on the thread through ``run``, never across awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from hookline.domain.errors import Unavailable
from hookline.storage import conflicts, sql
from hookline.storage.base import EndpointChanged
from hookline.storage.migrations import check_version, load_migrations
from hookline.storage.queries import dialect_queries
from hookline.storage.sqlite.transactions import transaction, without_fsync

R = TypeVar("R")
OnThread = Callable[[sqlite3.Connection, int | None], R]
"""Work run on the connection's thread, given the connection and the write-lock file."""

log = logging.getLogger("hookline.sqlite")

BUSY_TIMEOUT_MS = 5000
QUERIES = dialect_queries("hookline.storage.sqlite")
MIGRATIONS = load_migrations("hookline.storage.sqlite")


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    return url[len(prefix) :]


FILE_MODE = 0o600
"""A new database file is its owner's only; SQLite gives its ``-wal`` and ``-shm`` files the
database file's mode."""


def _create_owner_only(path: str) -> None:
    """Create the database file owner-only before SQLite would create it under the umask
    (world-readable by default); warn about an existing file that others may read."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileNotFoundError:
        return  # no such folder: sqlite3 says so, as Unavailable
    except FileExistsError:
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "%s is readable or writable by other users (mode %o): chmod 600 it, and its "
                "-wal and -shm files, to keep it the hookline user's only",
                path,
                mode,
            )


class SqliteConnector:
    """Named queries and writes on one SQLite file, each write in its own transaction."""

    dialect = sql.SQLITE
    queries = QUERIES

    def __init__(
        self, path: str, on_connect: Callable[[sqlite3.Connection], None] | None = None
    ) -> None:
        self._path = path
        self._on_connect = on_connect
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookline-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None

    async def run(self, fn: OnThread[R]) -> R:
        """``fn`` on the connection's thread, its errors translated to domain errors."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, self._call, fn)
        except sqlite3.IntegrityError as exc:
            raise conflicts.unique_violation(str(exc).rpartition(": ")[2]) from exc
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"database error: {exc}") from exc

    def _call(self, fn: OnThread[R]) -> R:
        if self._conn is None:
            raise Unavailable("the store is not open")
        return fn(self._conn, self._lock)

    # -- the repository's surface ---------------------------------------------------------

    async def query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        text = QUERIES.get(name_or_sql, name_or_sql)
        return await self.run(lambda conn, _lock: conn.execute(text, params).fetchall())

    async def execute(self, name: str, params: dict[str, Any]) -> int:
        """One statement in its own transaction; the rows it changed."""

        def write(conn: sqlite3.Connection, lock: int | None) -> int:
            with transaction(conn, lock):
                return int(conn.execute(QUERIES[name], params).rowcount)

        return await self.run(write)

    async def execute_many(self, name: str, params: Sequence[dict[str, Any]]) -> None:
        """One statement per parameter set, all in one transaction."""

        def write(conn: sqlite3.Connection, lock: int | None) -> None:
            with transaction(conn, lock):
                conn.executemany(QUERIES[name], params)

        await self.run(write)

    async def script(self, name: str, params: dict[str, Any]) -> None:
        """A ``;``-separated block of statements in one transaction."""

        def write(conn: sqlite3.Connection, lock: int | None) -> None:
            with transaction(conn, lock):
                for statement in QUERIES[name].split(";"):
                    conn.execute(statement, params)

        await self.run(write)

    async def write_returning(
        self, name: str, params: Sequence[dict[str, Any]], *, durable: bool = True
    ) -> list[list[Any]]:
        """All in one transaction: the file has one writer at a time anyway."""

        def write(conn: sqlite3.Connection, lock: int | None) -> list[list[Any]]:
            with contextlib.ExitStack() as stack:
                if not durable:
                    stack.enter_context(without_fsync(conn))
                stack.enter_context(transaction(conn, lock))
                return [conn.execute(QUERIES[name], p).fetchall() for p in params]

        return await self.run(write)

    async def listen(
        self, wake: Callable[[], None], endpoint_changed: EndpointChanged | None
    ) -> None:
        """SQLite has no notifications: workers in other processes poll."""
        return None

    # -- connection and schema -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                _create_owner_only(self._path)
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, cached_statements=256
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            # Before the first table exists, so a new database reuses space incrementally
            # (sqlite/pruner.py); on an existing file it only prepares the next VACUUM.
            conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed 202 survives power loss too, not only a killed process.
            conn.execute("PRAGMA synchronous = FULL")
            # Deleted and replaced content (a rotated-out secret, a deleted endpoint) is
            # overwritten with zeros instead of lingering in free pages (docs/security.md).
            conn.execute("PRAGMA secure_delete = ON")
            if self._on_connect is not None:
                self._on_connect(conn)
            if self._path != ":memory:":
                self._lock = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            self._conn = conn
        return self._conn

    def _initialised(self) -> bool:
        found = self._connect().execute(QUERIES["schema_initialised"])
        return found.fetchone() is not None

    def _version(self) -> int:
        if not self._initialised():
            return 0
        return int(self._connect().execute(QUERIES["schema_version"]).fetchone()[0])

    def _migrate(self) -> list[int]:
        conn = self._connect()
        applied: list[int] = []
        for migration in MIGRATIONS[self._version() :]:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migration.sql}\n;DELETE FROM schema_version;"
                f"INSERT INTO schema_version (version) VALUES ({migration.version});COMMIT;"
            )
            applied.append(migration.version)
        return applied

    def _open(self) -> None:
        """Connect; an empty database is initialised, one that is behind is refused."""
        if not self._initialised():
            self._migrate()
        check_version(self._version(), len(MIGRATIONS), f"sqlite:///{self._path}")

    async def _on_thread(self, fn: Callable[[], R]) -> R:
        """Connection management, which runs before there is a connection to hand ``run``."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"database error: {exc}") from exc

    async def open(self) -> None:
        await self._on_thread(self._open)

    async def migrate(self) -> list[int]:
        return await self._on_thread(self._migrate)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def close(self) -> None:
        await self._on_thread(self._close)
        self._executor.shutdown(wait=True)
