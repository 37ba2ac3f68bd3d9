"""``PostgresStore``: the scale-out backend on asyncpg.

asyncpg was chosen by measurement (docs/postgresql.md): about twice psycopg 3's rate for
concurrent single-row commits, which is the ingest pattern, and it prepares and caches
each statement per connection. Every statement uses ``:name`` parameters in
``queries.sql`` and is turned into ``$n`` once. Connection trouble becomes
``Unavailable`` (a 503 at the API, a back-off in the worker), so nothing that was not
committed is ever acknowledged.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.models import (
    ClaimedDelivery,
    Endpoint,
)
from hookline.storage import rows, sql
from hookline.storage.base import (
    AttemptOutcome,
    Deferral,
    IdempotentResponse,
)
from hookline.storage.codec import PLAIN, RowCodec
from hookline.storage.group_commit import GroupCommit, PendingPublish, Routed
from hookline.storage.handoff import DeliveryRows
from hookline.storage.migrations import check_version, load_migrations
from hookline.storage.queries import load_queries
from hookline.storage.repository import SqlRepository

log = logging.getLogger("hookline.postgres")

T = TypeVar("T")
Connection = Any  # asyncpg ships no type information for its connection classes

Q = load_queries("hookline.storage.postgres", "queries.sql")
MIGRATIONS = load_migrations("hookline.storage.postgres")
MIGRATION_LOCK_KEY = 0x686F6F6B  # "hook": serialises concurrent `hookline migrate`
NOTIFY_CHANNEL = "hookline_work"
"""Where a trigger on ``deliveries`` announces claimable work (migration 0003)."""
ACQUIRE_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0
LISTEN_RETRY_SECONDS = 1.0
IDEMPOTENCY_STALE_SECONDS = 60
GROUP_COMMIT_MAX = 500
"""Most publishes one commit carries; more wait for the next."""

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


class PostgresStore(SqlRepository):
    """The ``Store`` contract on PostgreSQL; safe for many processes on many machines."""

    dialect = sql.POSTGRES

    def __init__(self, url: str, pool_size: int = 10, codec: RowCodec = PLAIN) -> None:
        self._url = url
        self.codec = codec
        self._pool_size = pool_size
        self._pool: Any = None
        self._group = GroupCommit(self._write_batch, GROUP_COMMIT_MAX)

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
    async def _conn(self, transaction: bool = False) -> AsyncIterator[Connection]:
        pool = await self._ensure_pool()
        try:
            async with pool.acquire(timeout=ACQUIRE_TIMEOUT_SECONDS) as conn:
                if transaction:
                    async with conn.transaction():
                        yield conn
                else:
                    yield conn
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(_conflict_detail(exc)) from exc
        except CONNECTION_ERRORS as exc:
            # One dropped connection usually means all were (a restart, pg_terminate_backend,
            # a failover): replace every pooled connection instead of failing on each in turn.
            await pool.expire_connections()
            raise Unavailable(f"database unavailable: {exc}") from exc

    async def _fetch(self, conn: Connection, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        text, args = sql.to_positional(Q.get(name_or_sql, name_or_sql), params)
        return list(await conn.fetch(text, *args))

    async def _execute(self, conn: Connection, name: str, params: dict[str, Any]) -> int:
        text, args = sql.to_positional(Q[name], params)
        return _rowcount(await conn.execute(text, *args))

    async def _execute_rows(
        self, conn: Connection, name: str, rows_: Sequence[dict[str, Any]]
    ) -> int:
        """A statement over ``unnest`` arrays: each of its parameters is bound to the list of
        that name's values across ``rows_`` (a name a row lacks is NULL)."""
        text, names = sql.compile_positional(Q[name])
        arrays = [[row.get(column) for row in rows_] for column in names]
        return _rowcount(await conn.execute(text, *arrays))

    async def _query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        async with self._conn() as conn:
            return await self._fetch(conn, name_or_sql, params)

    async def _write(self, name: str, params: dict[str, Any]) -> int:
        async with self._conn(transaction=True) as conn:
            return await self._execute(conn, name, params)

    async def _script(self, name: str, params: dict[str, Any]) -> None:
        async with self._conn(transaction=True) as conn:
            for statement in Q[name].split(";"):
                text, args = sql.to_positional(statement, params)
                await conn.execute(text, *args)

    async def _version(self, conn: Connection) -> int | None:
        exists = await conn.fetchval("SELECT to_regclass('schema_version') IS NOT NULL")
        if not exists:
            return None
        return int(await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_version"))

    async def _apply_pending(self, conn: Connection) -> list[int]:
        applied: list[int] = []
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
            current = await self._version(conn) or 0
            for migration in MIGRATIONS[current:]:
                await conn.execute(migration.sql)
                await conn.execute("DELETE FROM schema_version")
                await conn.execute(
                    "INSERT INTO schema_version (version) VALUES ($1)", migration.version
                )
                applied.append(migration.version)
        return applied

    async def open(self) -> None:
        """Connect; initialise an empty database; refuse a schema that is behind or ahead."""
        async with self._conn() as conn:
            if await self._version(conn) is None:
                await self._apply_pending(conn)
            check_version(await self._version(conn) or 0, len(MIGRATIONS), _redacted(self._url))

    async def migrate(self) -> list[int]:
        async with self._conn() as conn:
            return await self._apply_pending(conn)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            with contextlib.suppress(*CONNECTION_ERRORS):
                await asyncio.wait_for(pool.close(), timeout=10)

    async def ping(self) -> None:
        async with self._conn() as conn:
            await conn.fetchval("SELECT 1")

    async def _write_batch(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """The batch in one transaction, one statement per table; if one request conflicts
        (a repeated eventId), again one transaction per request, so only that one fails.

        Attempt records take their own transactions here (``complete``): with PostgreSQL
        there is no single write lock to share, so ``outcomes`` is always empty."""
        start = deliveries.mark()
        try:
            async with self._conn(transaction=True) as conn:
                together: list[Routed | Exception] = []
                together += await self._publish_together(conn, batch, deliveries)
                return together
        except Conflict:
            deliveries.undo(start)
        results: list[Routed | Exception] = []
        for request in batch:
            mark = deliveries.mark()
            try:
                async with self._conn(transaction=True) as conn:
                    (routed,) = await self._publish_together(conn, [request], deliveries)
                results.append(routed)
            except Conflict:
                deliveries.undo(mark)
                results.append(
                    Conflict(
                        "A message with this eventId already exists in this application",
                        code="conflict",
                    )
                )
            except Exception as exc:
                deliveries.undo(mark)
                results.append(exc)
        return results

    async def _publish_together(
        self, conn: Connection, batch: Sequence[PendingPublish], deliveries: DeliveryRows
    ) -> list[Routed]:
        outcomes: list[Routed] = []
        endpoints_by_app: dict[str, list[Endpoint]] = {}
        messages: list[dict[str, Any]] = []
        delivery_rows: list[dict[str, Any]] = []
        for request in batch:
            routed: Routed = []
            for msg in request.messages:
                messages.append(rows.message_params(msg))
                endpoints = endpoints_by_app.get(msg.app_id)
                if endpoints is None:
                    active = await self._fetch(conn, "active_endpoints", {"app_id": msg.app_id})
                    endpoints = endpoints_by_app[msg.app_id] = [
                        rows.endpoint_from(r, self.codec) for r in active
                    ]
                targets = rows.route(endpoints, msg, request.only_endpoint)
                pending, leased = deliveries.split(msg, targets, request.now_ms)
                delivery_rows += pending
                delivery_rows += leased
                routed.append([ep.id for ep in targets])
            outcomes.append(routed)
        await self._execute_rows(conn, "insert_messages", messages)
        if delivery_rows:
            await self._execute_rows(conn, "insert_deliveries", delivery_rows)
        completions = [r.completion for r in batch if r.completion is not None]
        if completions:
            text, names = sql.compile_positional(Q["idempotency_finish"])
            await conn.executemany(
                text, [_ordered(rows.completion_params(c), names) for c in completions]
            )
        return outcomes

    async def claim_due(
        self,
        limit: int,
        now: datetime,
        lease_until: datetime,
        worker_id: str,
        busy_endpoints: Sequence[str] = (),
        per_endpoint: int | None = None,
    ) -> list[ClaimedDelivery]:
        params = rows.claim_params(limit, now, lease_until, worker_id, per_endpoint)
        params["busy"] = self.dialect.list_param(busy_endpoints)
        token = params["lease_token"]
        async with self._conn(transaction=True) as conn:
            leased = await self._fetch(conn, "claim_due", params)
            if not leased:
                return []
            messages = await self._fetch(
                conn, "messages_by_ids", {"ids": list({r["msg_id"] for r in leased})}
            )
            endpoints = await self._fetch(
                conn, "endpoints_by_ids", {"ids": list({r["endpoint_id"] for r in leased})}
            )
        return rows.claimed_from(leased, messages, endpoints, token, self.codec)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """A batch of outcomes in two statements over arrays, as the publishes' group commit
        writes its rows: ``executemany`` costs the server one execution per row."""
        if not outcomes:
            return
        attempts = [rows.attempt_params(o.attempt) for o in outcomes]
        finishes = [rows.finish_params(o) for o in outcomes]
        async with self._conn(transaction=True) as conn:
            await self._execute_rows(conn, "insert_attempts", attempts)
            await self._execute_rows(conn, "finish_deliveries", finishes)
            for o in outcomes:
                if o.disable_endpoint:
                    await self._execute(
                        conn,
                        "disable_endpoint",
                        {
                            "endpoint_id": o.claimed.endpoint.id,
                            "now": rows.to_ms(o.attempt.timestamp),
                        },
                    )

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        text, names = sql.compile_positional(Q["defer_delivery"])
        async with self._conn(transaction=True) as conn:
            await conn.executemany(
                text, [_ordered(rows.defer_params(d, now), names) for d in deferrals]
            )

    async def listen(self, wake: Callable[[], None]) -> None:
        """Hold a LISTEN connection, re-established whenever it drops, until cancelled."""
        while True:
            conn: Connection = None
            try:
                conn = await asyncpg.connect(self._url)
                lost = asyncio.Event()
                conn.add_termination_listener(_setter(lost))
                await conn.add_listener(NOTIFY_CHANNEL, lambda *_args: wake())
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

    async def idempotency_begin(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> IdempotentResponse | None:
        params = {"scope": scope, "key": key, "request_hash": request_hash, "now": rows.to_ms(now)}
        stale = rows.to_ms(now - timedelta(seconds=IDEMPOTENCY_STALE_SECONDS))
        async with self._conn(transaction=True) as conn:
            if await self._execute(conn, "idempotency_insert", params) == 1:
                return None
            taken = await self._execute(
                conn, "idempotency_takeover", {**params, "stale_before": stale}
            )
            if taken == 1:
                return None
            found = await self._fetch(conn, "idempotency_get", params)
        row = found[0]
        body = row["body"]
        return IdempotentResponse(
            request_hash=row["request_hash"],
            status=row["status"],
            body=None if body is None else bytes(body),
        )


def _ordered(params: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(params[n] for n in names)


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


def _conflict_detail(exc: asyncpg.UniqueViolationError) -> str:
    if "uid" in (exc.constraint_name or ""):
        return "An object with this uid already exists"
    return "The object conflicts with an existing one"


def _redacted(url: str) -> str:
    """The URL without its password, fit for a message."""
    head, at, tail = url.rpartition("@")
    if not at:
        return url
    scheme, _, credentials = head.partition("://")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{tail}"
