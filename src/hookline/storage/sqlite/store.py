"""``SqliteStore``: the embedded backend, one file in WAL mode.

sqlite3 is synchronous, so every call runs on one dedicated thread that owns the
connection: the event loop never blocks, and all writes are serialized in-process
without lock contention. Other processes may open the same file (``serve --no-worker``
beside ``worker``); WAL and ``busy_timeout`` make that safe, one writer at a time.
"""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson

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

T = TypeVar("T")
R = TypeVar("R")

BUSY_TIMEOUT_MS = 5000
IDEMPOTENCY_STALE_SECONDS = 60

Q = load_queries("hookline.storage.sqlite", "queries.sql")
MIGRATIONS = load_migrations("hookline.storage.sqlite")


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    return url[len(prefix) :]


@contextmanager
def _transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


class SqliteStore:
    """The ``Store`` contract on one SQLite file."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookline-sqlite")
        self._conn: sqlite3.Connection | None = None

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        return cls(path_from_url(url))

    # -- plumbing -----------------------------------------------------------------

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn, *args)
        except sqlite3.OperationalError as exc:
            raise Unavailable(f"database error: {exc}") from exc

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise Unavailable("the store is not open")
        return self._conn

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(
                self._path, isolation_level=None, check_same_thread=False, cached_statements=256
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            # FULL: a committed 202 survives power loss too, not only a killed process.
            conn.execute("PRAGMA synchronous = FULL")
            self._conn = conn
        return self._conn

    def _initialised(self) -> bool:
        found = self._connect().execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
        return found.fetchone() is not None

    def _version(self) -> int:
        if not self._initialised():
            return 0
        row = self._connect().execute("SELECT max(version) FROM schema_version").fetchone()
        return int(row[0] or 0)

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

    async def open(self) -> None:
        await self._run(self._open)

    async def migrate(self) -> list[int]:
        return await self._run(self._migrate)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda: self.conn.execute("SELECT 1").fetchone())

    def _one(self, name: str, params: dict[str, Any], convert: Callable[[Any], T]) -> T | None:
        row = self.conn.execute(Q[name], params).fetchone()
        return None if row is None else convert(row)

    def _write(self, name: str, params: dict[str, Any]) -> int:
        with _transaction(self.conn) as conn:
            return conn.execute(Q[name], params).rowcount

    def _script(self, name: str, params: dict[str, Any]) -> None:
        with _transaction(self.conn) as conn:
            for statement in Q[name].split(";"):
                conn.execute(statement, params)

    def _page(
        self,
        select: str,
        where: list[str],
        params: dict[str, Any],
        key: str,
        query: ListQuery,
        convert: Callable[[Any], T],
        item_key: Callable[[T], str],
    ) -> Page[T]:
        text, args = sql.page_sql(select, where, params, key, query)
        return sql.shape_page(self.conn.execute(text, args).fetchall(), query, convert, item_key)

    # -- applications ---------------------------------------------------------------

    async def create_application(self, app: Application) -> None:
        await self._run(self._insert, "insert_application", rows.application_params(app))

    def _insert(self, name: str, params: dict[str, Any]) -> None:
        try:
            self._write(name, params)
        except sqlite3.IntegrityError as exc:
            raise Conflict(_conflict_detail(exc)) from exc

    async def get_application(self, id_or_uid: str) -> Application | None:
        return await self._run(
            self._one, "get_application", {"key": id_or_uid}, rows.application_from
        )

    async def list_applications(self, query: ListQuery) -> Page[Application]:
        return await self._run(
            self._page,
            "SELECT * FROM applications",
            [],
            {},
            "id",
            query,
            rows.application_from,
            _id_of,
        )

    async def update_application(self, app: Application) -> None:
        await self._run(self._insert, "update_application", rows.application_params(app))

    async def delete_application(self, app_id: str) -> None:
        await self._run(self._script, "delete_application", {"app_id": app_id})

    # -- event types ----------------------------------------------------------------

    async def create_event_type(self, event_type: EventType) -> None:
        try:
            await self._run(self._write, "insert_event_type", rows.event_type_params(event_type))
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                "An event type with this name already exists", code="event_type_exists"
            ) from exc

    async def get_event_type(self, name: str) -> EventType | None:
        return await self._run(self._one, "get_event_type", {"name": name}, rows.event_type_from)

    async def list_event_types(self, query: ListQuery, include_archived: bool) -> Page[EventType]:
        where = [] if include_archived else ["archived = 0"]
        return await self._run(
            self._page,
            "SELECT * FROM event_types",
            where,
            {},
            "name",
            query,
            rows.event_type_from,
            lambda et: et.name,
        )

    async def update_event_type(self, event_type: EventType) -> None:
        await self._run(self._write, "update_event_type", rows.event_type_params(event_type))

    async def delete_event_type(self, name: str) -> None:
        await self._run(self._write, "delete_event_type", {"name": name})

    async def missing_event_types(self, names: Sequence[str]) -> list[str]:
        def run() -> list[str]:
            found = {
                r[0] for r in self.conn.execute(Q["existing_event_types"], {"names": _json(names)})
            }
            return [n for n in names if n not in found]

        return await self._run(run)

    # -- endpoints ------------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint) -> None:
        await self._run(self._insert, "insert_endpoint", rows.endpoint_params(endpoint))

    async def get_endpoint(self, app_id: str, id_or_uid: str) -> Endpoint | None:
        return await self._run(
            self._one, "get_endpoint", {"app_id": app_id, "key": id_or_uid}, rows.endpoint_from
        )

    async def list_endpoints(self, app_id: str, query: ListQuery) -> Page[Endpoint]:
        return await self._run(
            self._page,
            "SELECT * FROM endpoints",
            ["app_id = :app_id"],
            {"app_id": app_id},
            "id",
            query,
            rows.endpoint_from,
            _id_of,
        )

    async def update_endpoint(self, endpoint: Endpoint) -> None:
        await self._run(self._insert, "update_endpoint", rows.endpoint_params(endpoint))

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        await self._run(
            self._script, "delete_endpoint", {"app_id": app_id, "endpoint_id": endpoint_id}
        )

    async def endpoint_stats(self, app_id: str, endpoint_id: str) -> EndpointStats:
        def run() -> EndpointStats:
            counts = {
                MessageStatus(r["status"]).text: r["n"]
                for r in self.conn.execute(
                    Q["endpoint_stats"], {"app_id": app_id, "endpoint_id": endpoint_id}
                )
            }
            return EndpointStats(**counts)

        return await self._run(run)

    # -- messages -------------------------------------------------------------------

    async def publish(
        self,
        messages: Sequence[Message],
        now: datetime,
        only_endpoint: str | None = None,
        completion: IdempotencyCompletion | None = None,
    ) -> list[list[str]]:
        return await self._run(self._publish, messages, rows.to_ms(now), only_endpoint, completion)

    def _publish(
        self,
        messages: Sequence[Message],
        now_ms: int,
        only_endpoint: str | None,
        completion: IdempotencyCompletion | None,
    ) -> list[list[str]]:
        routed: list[list[str]] = []
        endpoints_by_app: dict[str, list[Endpoint]] = {}
        try:
            with _transaction(self.conn) as conn:
                for msg in messages:
                    conn.execute(Q["insert_message"], rows.message_params(msg))
                    if msg.app_id not in endpoints_by_app:
                        endpoints_by_app[msg.app_id] = [
                            rows.endpoint_from(r)
                            for r in conn.execute(Q["active_endpoints"], {"app_id": msg.app_id})
                        ]
                    targets = [
                        ep.id
                        for ep in endpoints_by_app[msg.app_id]
                        if (only_endpoint is None or ep.id == only_endpoint)
                        and endpoint_accepts(
                            ep.event_types, ep.channels, msg.event_type, msg.channels
                        )
                    ]
                    conn.executemany(
                        Q["insert_delivery"],
                        [
                            {
                                "id": ids.new_id(ids.DELIVERY),
                                "app_id": msg.app_id,
                                "msg_id": msg.id,
                                "endpoint_id": ep_id,
                                "now": now_ms,
                            }
                            for ep_id in targets
                        ],
                    )
                    routed.append(targets)
                if completion is not None:
                    conn.execute(Q["idempotency_finish"], rows.completion_params(completion))
        except sqlite3.IntegrityError as exc:
            raise Conflict(
                "A message with this eventId already exists in this application", code="conflict"
            ) from exc
        return routed

    async def get_message(self, app_id: str, id_or_event_id: str) -> Message | None:
        return await self._run(
            self._one,
            "get_message",
            {"app_id": app_id, "key": id_or_event_id},
            rows.message_from,
        )

    async def list_messages(
        self, app_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[Message]:
        where, params = sql.message_where(sql.SQLITE, "m", filters)
        return await self._run(
            self._page,
            "SELECT m.* FROM messages AS m",
            ["m.app_id = :app_id", *where],
            {"app_id": app_id, **params},
            "m.id",
            query,
            rows.message_from,
            _id_of,
        )

    async def expunge_message_content(self, app_id: str, msg_id: str) -> None:
        await self._run(self._write, "expunge_message", {"app_id": app_id, "msg_id": msg_id})

    # -- deliveries -----------------------------------------------------------------

    async def claim_due(
        self, limit: int, now: datetime, lease_until: datetime, worker_id: str
    ) -> list[ClaimedDelivery]:
        params = {
            "lease_token": uuid.uuid4().hex,
            "lease_until": rows.to_ms(lease_until),
            "now": rows.to_ms(now),
            "limit": limit,
            "worker_id": worker_id,
        }
        return await self._run(self._claim, params)

    def _claim(self, params: dict[str, Any]) -> list[ClaimedDelivery]:
        token = params["lease_token"]
        with _transaction(self.conn) as conn:
            leased = conn.execute(Q["claim_due"], params).fetchall()
            if not leased:
                return []
            messages = {
                r["id"]: rows.message_from(r)
                for r in conn.execute(
                    Q["messages_by_ids"], {"ids": _json([r["msg_id"] for r in leased])}
                )
            }
            endpoints = {
                r["id"]: rows.endpoint_from(r)
                for r in conn.execute(
                    Q["endpoints_by_ids"], {"ids": _json([r["endpoint_id"] for r in leased])}
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
        await self._run(self._complete, outcomes)

    def _complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        with _transaction(self.conn) as conn:
            conn.executemany(
                Q["insert_attempt"], [rows.attempt_params(o.attempt) for o in outcomes]
            )
            conn.executemany(
                Q["finish_delivery"],
                [
                    {
                        "id": o.claimed.delivery_id,
                        "lease_token": o.claimed.lease_token,
                        "status": int(o.delivery_status),
                        "attempt_count": o.scheduled_attempts,
                        "next_attempt_at": rows.to_ms(o.next_attempt_at),
                        "now": rows.to_ms(o.attempt.timestamp),
                    }
                    for o in outcomes
                ],
            )
            conn.executemany(
                Q["disable_endpoint"],
                [
                    {"endpoint_id": o.claimed.endpoint.id, "now": rows.to_ms(o.attempt.timestamp)}
                    for o in outcomes
                    if o.disable_endpoint
                ],
            )

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None:
        await self._run(
            self._write,
            "resend",
            {
                "app_id": app_id,
                "msg_id": msg_id,
                "endpoint_id": endpoint_id,
                "now": rows.to_ms(now),
            },
        )

    async def recover(
        self, app_id: str, endpoint_id: str, since: datetime, until: datetime, now: datetime
    ) -> int:
        return await self._run(
            self._write,
            "recover",
            {
                "app_id": app_id,
                "endpoint_id": endpoint_id,
                "since": rows.to_ms(since),
                "until": rows.to_ms(until),
                "now": rows.to_ms(now),
            },
        )

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None:
        return await self._run(
            self._one,
            "get_delivery",
            {"msg_id": msg_id, "endpoint_id": endpoint_id},
            rows.delivery_from,
        )

    async def next_due_at(self) -> datetime | None:
        def run() -> datetime | None:
            return rows.from_ms(self.conn.execute(Q["next_due_at"]).fetchone()[0])

        return await self._run(run)

    # -- workers --------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, now: datetime) -> None:
        await self._run(
            self._write,
            "register_worker",
            rows.worker_params(worker_id, now),
        )

    async def unregister_worker(self, worker_id: str) -> None:
        await self._run(self._write, "unregister_worker", {"worker_id": worker_id})

    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None:
        await self._run(
            self._script,
            "release_stalled",
            {"stalled_before": rows.to_ms(stalled_before), "now": rows.to_ms(now)},
        )

    async def listen(self, wake: Callable[[], None]) -> None:
        """SQLite has no notifications: workers in other processes poll."""
        return None

    # -- attempts -------------------------------------------------------------------

    async def get_attempt(self, app_id: str, attempt_id: str) -> Attempt | None:
        return await self._run(
            self._one,
            "get_attempt",
            {"app_id": app_id, "attempt_id": attempt_id},
            rows.attempt_from,
        )

    async def list_attempts(
        self, app_id: str, query: ListQuery, filters: AttemptFilter, msg_id: str | None
    ) -> Page[Attempt]:
        select, where, params = sql.attempt_query(sql.SQLITE, app_id, filters, msg_id)
        return await self._run(
            self._page, select, where, params, "a.id", query, rows.attempt_from, _id_of
        )

    async def list_attempted_messages(
        self, app_id: str, endpoint_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[tuple[Message, Delivery]]:
        where, params = sql.message_where(sql.SQLITE, "m", filters)
        return await self._run(
            self._page,
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
        return await self._run(
            self._page,
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
        await self._run(self._write, "insert_token", rows.token_params(token))

    async def find_token(self, token_hash: str) -> AccessToken | None:
        return await self._run(self._one, "find_token", {"token_hash": token_hash}, rows.token_from)

    async def count_admin_tokens(self) -> int:
        return await self._run(
            lambda: int(self.conn.execute(Q["count_admin_tokens"]).fetchone()[0])
        )

    async def idempotency_begin(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> IdempotentResponse | None:
        def run() -> IdempotentResponse | None:
            params = {
                "scope": scope,
                "key": key,
                "request_hash": request_hash,
                "now": rows.to_ms(now),
            }
            with _transaction(self.conn) as conn:
                if conn.execute(Q["idempotency_insert"], params).rowcount == 1:
                    return None
                stale = rows.to_ms(now - timedelta(seconds=IDEMPOTENCY_STALE_SECONDS))
                taken = conn.execute(
                    Q["idempotency_takeover"], {**params, "stale_before": stale}
                ).rowcount
                if taken == 1:
                    return None
                row = conn.execute(Q["idempotency_get"], params).fetchone()
            body = row["body"]
            return IdempotentResponse(
                request_hash=row["request_hash"],
                status=row["status"],
                body=None if body is None else bytes(body),
            )

        return await self._run(run)

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None:
        await self._run(
            self._write,
            "idempotency_finish",
            {"scope": scope, "key": key, "status": status, "body": body},
        )

    async def idempotency_abandon(self, scope: str, key: str) -> None:
        await self._run(self._write, "idempotency_abandon", {"scope": scope, "key": key})

    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None:
        def run() -> None:
            with _transaction(self.conn) as conn:
                conn.execute(Q["purge_idempotency"], {"before": rows.to_ms(idempotency_before)})
                conn.execute(Q["purge_expired_payloads"], {"now": rows.to_ms(now)})
                conn.execute(Q["purge_expired_tokens"], {"now": rows.to_ms(now)})

        await self._run(run)


def _json(values: Sequence[str]) -> str:
    return orjson.dumps(list(values)).decode()


def _id_of(item: Any) -> str:
    return str(item.id)


def _conflict_detail(exc: sqlite3.IntegrityError) -> str:
    if "uid" in str(exc):
        return "An object with this uid already exists"
    return "The object conflicts with an existing one"
