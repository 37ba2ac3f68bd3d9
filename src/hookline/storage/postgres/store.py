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
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

import asyncpg

from hookline.domain import ids
from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.models import (
    AccessToken,
    Application,
    Attempt,
    AttemptTrigger,
    ClaimedDelivery,
    Delivery,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    MessageStatus,
    Page,
)
from hookline.domain.routing import endpoint_accepts
from hookline.storage import rows, sql
from hookline.storage.base import (
    AttemptFilter,
    AttemptOutcome,
    IdempotencyCompletion,
    IdempotentResponse,
    ListQuery,
    MessageFilter,
)
from hookline.storage.migrations import check_version, load_migrations
from hookline.storage.queries import load_queries

log = logging.getLogger("hookline.postgres")

T = TypeVar("T")
Connection = Any  # asyncpg ships no type information for its connection classes

Q = load_queries("hookline.storage.postgres", "queries.sql")
MIGRATIONS = load_migrations("hookline.storage.postgres")
MIGRATION_LOCK_KEY = 0x686F6F6B  # "hook": serialises concurrent `hookline migrate`
NOTIFY_CHANNEL = "hookline_work"
ACQUIRE_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0
LISTEN_RETRY_SECONDS = 1.0
IDEMPOTENCY_STALE_SECONDS = 60

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


class PostgresStore:
    """The ``Store`` contract on PostgreSQL; safe for many processes on many machines."""

    def __init__(self, url: str, pool_size: int = 10) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: Any = None

    # -- plumbing -----------------------------------------------------------------

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

    async def _one(
        self, name: str, params: dict[str, Any], convert: Callable[[Any], T]
    ) -> T | None:
        async with self._conn() as conn:
            found = await self._fetch(conn, name, params)
        return convert(found[0]) if found else None

    async def _write(self, name: str, params: dict[str, Any]) -> int:
        async with self._conn(transaction=True) as conn:
            return await self._execute(conn, name, params)

    async def _script(self, name: str, params: dict[str, Any]) -> None:
        async with self._conn(transaction=True) as conn:
            for statement in Q[name].split(";"):
                text, args = sql.to_positional(statement, params)
                await conn.execute(text, *args)

    async def _page(
        self,
        select: str,
        where: list[str],
        params: dict[str, Any],
        key: str,
        query: ListQuery,
        convert: Callable[[Any], T],
        item_key: Callable[[T], str],
    ) -> Page[T]:
        text, named = sql.page_sql(select, where, params, key, query)
        async with self._conn() as conn:
            fetched = await self._fetch(conn, text, named)
        return sql.shape_page(fetched, query, convert, item_key)

    # -- lifecycle and schema -------------------------------------------------------

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

    # -- applications ---------------------------------------------------------------

    async def create_application(self, app: Application) -> None:
        await self._write("insert_application", rows.application_params(app))

    async def get_application(self, id_or_uid: str) -> Application | None:
        return await self._one("get_application", {"key": id_or_uid}, rows.application_from)

    async def list_applications(self, query: ListQuery) -> Page[Application]:
        return await self._page(
            "SELECT * FROM applications", [], {}, "id", query, rows.application_from, _id_of
        )

    async def update_application(self, app: Application) -> None:
        await self._write("update_application", rows.application_params(app))

    async def delete_application(self, app_id: str) -> None:
        await self._script("delete_application", {"app_id": app_id})

    # -- event types ----------------------------------------------------------------

    async def create_event_type(self, event_type: EventType) -> None:
        try:
            await self._write("insert_event_type", rows.event_type_params(event_type))
        except Conflict as exc:
            raise Conflict(
                "An event type with this name already exists", code="event_type_exists"
            ) from exc

    async def get_event_type(self, name: str) -> EventType | None:
        return await self._one("get_event_type", {"name": name}, rows.event_type_from)

    async def list_event_types(self, query: ListQuery, include_archived: bool) -> Page[EventType]:
        where = [] if include_archived else ["archived = 0"]
        return await self._page(
            "SELECT * FROM event_types",
            where,
            {},
            "name",
            query,
            rows.event_type_from,
            lambda et: et.name,
        )

    async def update_event_type(self, event_type: EventType) -> None:
        await self._write("update_event_type", rows.event_type_params(event_type))

    async def delete_event_type(self, name: str) -> None:
        await self._write("delete_event_type", {"name": name})

    async def missing_event_types(self, names: Sequence[str]) -> list[str]:
        async with self._conn() as conn:
            found = {
                r["name"]
                for r in await self._fetch(conn, "existing_event_types", {"names": list(names)})
            }
        return [n for n in names if n not in found]

    # -- endpoints ------------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint) -> None:
        await self._write("insert_endpoint", rows.endpoint_params(endpoint))

    async def get_endpoint(self, app_id: str, id_or_uid: str) -> Endpoint | None:
        return await self._one(
            "get_endpoint", {"app_id": app_id, "key": id_or_uid}, rows.endpoint_from
        )

    async def list_endpoints(self, app_id: str, query: ListQuery) -> Page[Endpoint]:
        return await self._page(
            "SELECT * FROM endpoints",
            ["app_id = :app_id"],
            {"app_id": app_id},
            "id",
            query,
            rows.endpoint_from,
            _id_of,
        )

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        await self._write("update_endpoint", rows.endpoint_params(endpoint))

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        await self._script("delete_endpoint", {"app_id": app_id, "endpoint_id": endpoint_id})

    async def endpoint_stats(self, app_id: str, endpoint_id: str) -> EndpointStats:
        async with self._conn() as conn:
            found = await self._fetch(
                conn, "endpoint_stats", {"app_id": app_id, "endpoint_id": endpoint_id}
            )
        return EndpointStats(**{MessageStatus(r["status"]).text: r["n"] for r in found})

    # -- messages -------------------------------------------------------------------

    async def publish(
        self,
        messages: Sequence[Message],
        now: datetime,
        only_endpoint: str | None = None,
        completion: IdempotencyCompletion | None = None,
    ) -> list[list[str]]:
        now_ms = rows.to_ms(now)
        routed: list[list[str]] = []
        endpoints_by_app: dict[str, list[Endpoint]] = {}
        try:
            async with self._conn(transaction=True) as conn:
                for msg in messages:
                    await self._execute(conn, "insert_message", rows.message_params(msg))
                    if msg.app_id not in endpoints_by_app:
                        active = await self._fetch(conn, "active_endpoints", {"app_id": msg.app_id})
                        endpoints_by_app[msg.app_id] = [rows.endpoint_from(r) for r in active]
                    targets = [
                        ep.id
                        for ep in endpoints_by_app[msg.app_id]
                        if (only_endpoint is None or ep.id == only_endpoint)
                        and endpoint_accepts(
                            ep.event_types, ep.channels, msg.event_type, msg.channels
                        )
                    ]
                    if targets:
                        text, names = sql.compile_positional(Q["insert_delivery"])
                        await conn.executemany(
                            text,
                            [
                                _ordered(
                                    {
                                        "id": ids.new_id(ids.DELIVERY),
                                        "app_id": msg.app_id,
                                        "msg_id": msg.id,
                                        "endpoint_id": ep_id,
                                        "now": now_ms,
                                    },
                                    names,
                                )
                                for ep_id in targets
                            ],
                        )
                    routed.append(targets)
                if completion is not None:
                    params = rows.completion_params(completion)
                    await self._execute(conn, "idempotency_finish", params)
                if any(routed):
                    await conn.execute(Q["notify_work"])
        except Conflict as exc:
            raise Conflict(
                "A message with this eventId already exists in this application", code="conflict"
            ) from exc
        return routed

    async def get_message(self, app_id: str, id_or_event_id: str) -> Message | None:
        return await self._one(
            "get_message", {"app_id": app_id, "key": id_or_event_id}, rows.message_from
        )

    async def list_messages(
        self, app_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[Message]:
        where, params = sql.message_where(sql.POSTGRES, "m", filters)
        return await self._page(
            "SELECT m.* FROM messages AS m",
            ["m.app_id = :app_id", *where],
            {"app_id": app_id, **params},
            "m.id",
            query,
            rows.message_from,
            _id_of,
        )

    async def expunge_message_content(self, app_id: str, msg_id: str) -> None:
        await self._write("expunge_message", {"app_id": app_id, "msg_id": msg_id})

    # -- deliveries -----------------------------------------------------------------

    async def claim_due(
        self, limit: int, now: datetime, lease_until: datetime, worker_id: str
    ) -> list[ClaimedDelivery]:
        token = uuid.uuid4().hex
        params = {
            "lease_token": token,
            "lease_until": rows.to_ms(lease_until),
            "now": rows.to_ms(now),
            "limit": limit,
            "worker_id": worker_id,
        }
        async with self._conn(transaction=True) as conn:
            leased = await self._fetch(conn, "claim_due", params)
            if not leased:
                return []
            messages = {
                r["id"]: rows.message_from(r)
                for r in await self._fetch(
                    conn, "messages_by_ids", {"ids": list({r["msg_id"] for r in leased})}
                )
            }
            endpoints = {
                r["id"]: rows.endpoint_from(r)
                for r in await self._fetch(
                    conn, "endpoints_by_ids", {"ids": list({r["endpoint_id"] for r in leased})}
                )
            }
        return [
            ClaimedDelivery(
                delivery_id=r["id"],
                lease_token=token,
                attempt_count=r["attempt_count"],
                trigger=AttemptTrigger.MANUAL if r["manual"] else AttemptTrigger.SCHEDULED,
                message=messages[r["msg_id"]],
                endpoint=endpoints[r["endpoint_id"]],
            )
            for r in leased
            if r["msg_id"] in messages and r["endpoint_id"] in endpoints
        ]

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        attempt_sql, attempt_names = sql.compile_positional(Q["insert_attempt"])
        finish_sql, finish_names = sql.compile_positional(Q["finish_delivery"])
        async with self._conn(transaction=True) as conn:
            await conn.executemany(
                attempt_sql,
                [_ordered(rows.attempt_params(o.attempt), attempt_names) for o in outcomes],
            )
            await conn.executemany(
                finish_sql,
                [
                    _ordered(
                        {
                            "id": o.claimed.delivery_id,
                            "lease_token": o.claimed.lease_token,
                            "status": int(o.delivery_status),
                            "attempt_count": o.scheduled_attempts,
                            "next_attempt_at": rows.to_ms(o.next_attempt_at),
                            "now": rows.to_ms(o.attempt.timestamp),
                        },
                        finish_names,
                    )
                    for o in outcomes
                ],
            )
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
            if any(o.next_attempt_at is not None for o in outcomes):
                await conn.execute(Q["notify_work"])

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None:
        params = {
            "app_id": app_id,
            "msg_id": msg_id,
            "endpoint_id": endpoint_id,
            "now": rows.to_ms(now),
        }
        async with self._conn(transaction=True) as conn:
            await self._execute(conn, "resend", params)
            await conn.execute(Q["notify_work"])

    async def recover(
        self, app_id: str, endpoint_id: str, since: datetime, until: datetime, now: datetime
    ) -> int:
        params = {
            "app_id": app_id,
            "endpoint_id": endpoint_id,
            "since": rows.to_ms(since),
            "until": rows.to_ms(until),
            "now": rows.to_ms(now),
        }
        async with self._conn(transaction=True) as conn:
            count = await self._execute(conn, "recover", params)
            await conn.execute(Q["notify_work"])
        return count

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None:
        return await self._one(
            "get_delivery", {"msg_id": msg_id, "endpoint_id": endpoint_id}, rows.delivery_from
        )

    async def next_due_at(self) -> datetime | None:
        async with self._conn() as conn:
            value = await conn.fetchval(Q["next_due_at"])
        return rows.from_ms(value)

    # -- workers --------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, now: datetime) -> None:
        await self._write("register_worker", rows.worker_params(worker_id, now))

    async def unregister_worker(self, worker_id: str) -> None:
        await self._write("unregister_worker", {"worker_id": worker_id})

    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None:
        await self._script(
            "release_stalled",
            {"stalled_before": rows.to_ms(stalled_before), "now": rows.to_ms(now)},
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

    # -- attempts -------------------------------------------------------------------

    async def get_attempt(self, app_id: str, attempt_id: str) -> Attempt | None:
        return await self._one(
            "get_attempt", {"app_id": app_id, "attempt_id": attempt_id}, rows.attempt_from
        )

    async def list_attempts(
        self, app_id: str, query: ListQuery, filters: AttemptFilter, msg_id: str | None
    ) -> Page[Attempt]:
        select, where, params = sql.attempt_query(sql.POSTGRES, app_id, filters, msg_id)
        return await self._page(select, where, params, "a.id", query, rows.attempt_from, _id_of)

    async def list_attempted_messages(
        self, app_id: str, endpoint_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[tuple[Message, Delivery]]:
        where, params = sql.message_where(sql.POSTGRES, "m", filters)
        return await self._page(
            sql.ATTEMPTED_MESSAGES,
            ["m.app_id = :app_id", *where],
            {"app_id": app_id, "endpoint_id": endpoint_id, **params},
            "m.id",
            query,
            rows.message_with_delivery,
            lambda pair: pair[0].id,
        )

    async def list_attempted_destinations(
        self, app_id: str, msg_id: str, query: ListQuery
    ) -> Page[tuple[Endpoint, Delivery]]:
        return await self._page(
            sql.ATTEMPTED_DESTINATIONS,
            ["e.app_id = :app_id"],
            {"app_id": app_id, "msg_id": msg_id},
            "e.id",
            query,
            rows.endpoint_with_delivery,
            lambda pair: pair[0].id,
        )

    # -- tokens and idempotency -----------------------------------------------------

    async def create_token(self, token: AccessToken) -> None:
        await self._write("insert_token", rows.token_params(token))

    async def find_token(self, token_hash: str) -> AccessToken | None:
        return await self._one("find_token", {"token_hash": token_hash}, rows.token_from)

    async def count_admin_tokens(self) -> int:
        async with self._conn() as conn:
            return int(await conn.fetchval(Q["count_admin_tokens"]))

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

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None:
        await self._write(
            "idempotency_finish", {"scope": scope, "key": key, "status": status, "body": body}
        )

    async def idempotency_abandon(self, scope: str, key: str) -> None:
        await self._write("idempotency_abandon", {"scope": scope, "key": key})

    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None:
        async with self._conn(transaction=True) as conn:
            await self._execute(
                conn, "purge_idempotency", {"before": rows.to_ms(idempotency_before)}
            )
            await self._execute(conn, "purge_expired_payloads", {"now": rows.to_ms(now)})
            await self._execute(conn, "purge_expired_tokens", {"now": rows.to_ms(now)})


def _ordered(params: dict[str, Any], names: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(params[n] for n in names)


def _setter(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


def _id_of(item: Any) -> str:
    return str(item.id)


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
