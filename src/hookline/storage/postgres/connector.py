"""``PostgresConnector``: named queries on a pool of asyncpg connections.

asyncpg was chosen by measurement (docs/postgresql.md): about twice psycopg 3's rate for
concurrent single-row commits, which is the ingest pattern, and it prepares and caches
each statement per connection. Every statement uses ``:name`` parameters in
``queries.sql`` and is turned into ``$n`` once.

This is the one place where asyncpg's errors become domain errors: a unique violation is
a ``Conflict`` (worded in ``storage/conflicts.py``), connection trouble and transactions
PostgreSQL rolled back (deadlocks, serialization conflicts) ``Unavailable`` (a 503 at the
API, a back-off in the worker), so nothing that was not committed is ever acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import asyncpg

from hookline.domain.errors import Unavailable
from hookline.storage import conflicts, sql
from hookline.storage.base import EndpointChanged
from hookline.storage.migrations import check_version, load_migrations
from hookline.storage.queries import dialect_queries

log = logging.getLogger("hookline.postgres")

Connection = Any  # asyncpg ships no type information for its connection classes

QUERIES = dialect_queries("hookline.storage.postgres")
MIGRATIONS = load_migrations("hookline.storage.postgres")
MIGRATION_LOCK_KEY = 0x686F6F6B  # "hook": serialises concurrent `hookline migrate`
NOTIFY_CHANNEL = "hookline_work"
"""Where a trigger on ``deliveries`` announces claimable work (migration 0005)."""
ACQUIRE_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0
ENDPOINTS_CHANNEL = "hookline_endpoints"
"""Where a trigger on ``endpoints`` announces a disable or an enable (migration 0007)."""
LISTEN_RETRY_SECONDS = 1.0

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.CannotConnectNowError,
    # Raised while a pooled connection is reset after the server dropped it mid-operation.
    asyncpg.exceptions.InternalClientError,
    asyncpg.exceptions.InvalidCatalogNameError,
)


def _rowcount(status: str) -> int:
    """asyncpg returns the command tag (``UPDATE 3``); the count is its last word."""
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresHandle:
    """Named queries on one connection: inside a transaction, or one statement each."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    async def query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        text, args = sql.to_positional(QUERIES.get(name_or_sql, name_or_sql), params)
        return list(await self.conn.fetch(text, *args))

    async def execute(self, name: str, params: dict[str, Any]) -> int:
        text, args = sql.to_positional(QUERIES[name], params)
        return _rowcount(await self.conn.execute(text, *args))

    async def execute_many(self, name: str, params: Sequence[dict[str, Any]]) -> None:
        text, names = sql.compile_positional(QUERIES[name])
        await self.conn.executemany(text, [tuple(p[n] for n in names) for p in params])

    async def execute_arrays(self, name: str, rows: Sequence[dict[str, Any]]) -> int:
        """A statement over ``unnest`` arrays: each of its parameters is bound to the list of
        that name's values across ``rows`` (a name a row lacks is NULL)."""
        text, names = sql.compile_positional(QUERIES[name])
        arrays = [[row.get(column) for row in rows] for column in names]
        return _rowcount(await self.conn.execute(text, *arrays))

    async def script(self, name: str, params: dict[str, Any]) -> None:
        for statement in QUERIES[name].split(";"):
            text, args = sql.to_positional(statement, params)
            await self.conn.execute(text, *args)


class PostgresConnector:
    """A pool of connections to one PostgreSQL database; safe for many processes."""

    dialect = sql.POSTGRES
    queries = QUERIES

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: Any = None

    async def _ensure_pool(self) -> Any:
        if self._pool is None:
            try:
                self._pool = await asyncpg.create_pool(
                    self._url,
                    min_size=1,
                    max_size=self._pool_size,
                    command_timeout=COMMAND_TIMEOUT_SECONDS,
                )
            except CONNECTION_ERRORS as exc:
                raise Unavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return self._pool

    @contextlib.asynccontextmanager
    async def _acquire(self, transaction: bool) -> AsyncIterator[PostgresHandle]:
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                try:
                    if transaction:
                        async with conn.transaction():
                            yield PostgresHandle(conn)
                    else:
                        yield PostgresHandle(conn)
                except CONNECTION_ERRORS:
                    # Its protocol state is unknown (asyncpg's "cannot switch to state 15":
                    # a ROLLBACK on a connection still inside the statement that broke), so
                    # it must never serve another caller: close it, and the pool opens anew.
                    conn.terminate()
                    raise
        except asyncpg.UniqueViolationError as exc:
            raise conflicts.unique_violation(exc.constraint_name or "") from exc
        except asyncpg.TransactionRollbackError as exc:
            # PostgreSQL rolled the transaction back to break a deadlock or a serialization
            # conflict (class 40): nothing was written, and the same work can simply be
            # tried again, so it is the back-off of Unavailable, not a crash of the caller.
            raise Unavailable(f"database rolled the transaction back: {exc}") from exc
        except CONNECTION_ERRORS as exc:
            # One dropped connection usually means all were (a restart, pg_terminate_backend,
            # a failover): replace every pooled connection instead of failing on each in turn.
            await pool.expire_connections()
            raise Unavailable(f"database unavailable: {exc}") from exc

    def transaction(self) -> contextlib.AbstractAsyncContextManager[PostgresHandle]:
        """A handle whose statements commit together when the block ends, or not at all."""
        return self._acquire(transaction=True)

    # -- the repository's surface ---------------------------------------------------------

    async def query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        async with self._acquire(transaction=False) as db:
            return await db.query(name_or_sql, params)

    async def execute(self, name: str, params: dict[str, Any]) -> int:
        """One statement, which PostgreSQL commits on its own; the rows it changed."""
        async with self._acquire(transaction=False) as db:
            return await db.execute(name, params)

    async def execute_many(self, name: str, params: Sequence[dict[str, Any]]) -> None:
        async with self._acquire(transaction=True) as db:
            await db.execute_many(name, params)

    async def script(self, name: str, params: dict[str, Any]) -> None:
        async with self._acquire(transaction=True) as db:
            await db.script(name, params)

    async def write_returning(
        self, name: str, params: Sequence[dict[str, Any]], *, durable: bool = True
    ) -> list[list[Any]]:
        """Each statement commits on its own, so a row lock lasts one statement. Every
        commit waits for its WAL flush, ``durable`` or not: concurrent commits share one."""
        async with self._acquire(transaction=False) as db:
            return [await db.query(name, p) for p in params]

    async def listen(
        self, wake: Callable[[], None], endpoint_changed: EndpointChanged | None
    ) -> None:
        """Hold a LISTEN connection, re-established whenever it drops, until cancelled."""
        while True:
            conn: Connection = None
            try:
                conn = await asyncpg.connect(self._url)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: wake())
                if endpoint_changed is not None:
                    await conn.add_listener(ENDPOINTS_CHANNEL, _endpoint_listener(endpoint_changed))
                wake()  # anything committed while we were not listening
                await lost.wait()
                log.warning("LISTEN connection lost; reconnecting")
            except CONNECTION_ERRORS as exc:
                log.warning("cannot LISTEN for new work (%s); retrying", exc)
            finally:
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(*CONNECTION_ERRORS):
                        await conn.close()
            await asyncio.sleep(LISTEN_RETRY_SECONDS)

    # -- connection and schema -------------------------------------------------------------

    async def _version(self, db: PostgresHandle) -> int | None:
        if not await db.query("schema_initialised", {}):
            return None
        return int((await db.query("schema_version", {}))[0][0])

    async def _apply_pending(self, db: PostgresHandle) -> list[int]:
        applied: list[int] = []
        async with db.conn.transaction():
            await db.execute("lock_migrations", {"key": MIGRATION_LOCK_KEY})
            current = await self._version(db) or 0
            for migration in MIGRATIONS[current:]:
                await db.conn.execute(migration.sql)
                await db.script("set_schema_version", {"version": migration.version})
                applied.append(migration.version)
        return applied

    async def open(self) -> None:
        """Connect; initialise an empty database; refuse a schema that is behind or ahead."""
        async with self._acquire(transaction=False) as db:
            if await self._version(db) is None:
                await self._apply_pending(db)
            check_version(await self._version(db) or 0, len(MIGRATIONS), _redacted(self._url))

    async def migrate(self) -> list[int]:
        async with self._acquire(transaction=False) as db:
            return await self._apply_pending(db)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await asyncio.wait_for(pool.close(), timeout=10)


def _endpoint_listener(endpoint_changed: EndpointChanged) -> Callable[..., None]:
    """The trigger's payload (migration 0007) is ``disabled:version:endpoint_id``."""

    def heard(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        disabled, version, endpoint_id = payload.split(":", 2)
        endpoint_changed(endpoint_id, int(version), disabled == "1")

    return heard


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


def _redacted(url: str) -> str:
    """The URL without its password, fit for a message."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
