"""``SqliteStore``: the embedded backend, one file in WAL mode.

sqlite3 is synchronous, so every call runs on one dedicated thread that owns the
connection: the event loop never blocks, and all writes are serialized in-process
without lock contention. Other processes may open the same file (``serve --no-worker``
beside ``worker``); WAL and ``busy_timeout`` make that safe, one writer at a time.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.models import (
    ClaimedDelivery,
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
from hookline.storage.sqlite.group_commit import SqliteBatchWriter
from hookline.storage.sqlite.transactions import transaction

R = TypeVar("R")

BUSY_TIMEOUT_MS = 5000
IDEMPOTENCY_STALE_SECONDS = 60
GROUP_COMMIT_MAX = 500
"""Most publishes one commit carries; more wait for the next."""

Q = load_queries("hookline.storage.sqlite", "queries.sql")
MIGRATIONS = load_migrations("hookline.storage.sqlite")


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    return url[len(prefix) :]


class SqliteStore(SqlRepository):
    """The ``Store`` contract on one SQLite file."""

    dialect = sql.SQLITE

    def __init__(self, path: str, codec: RowCodec = PLAIN) -> None:
        self._path = path
        self.codec = codec
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookline-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._group = GroupCommit(self._write_batch, GROUP_COMMIT_MAX)
        self._writer = SqliteBatchWriter(codec)

    @classmethod
    def from_url(cls, url: str) -> SqliteStore:
        return cls(path_from_url(url))

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
            SqliteBatchWriter.prepare(conn)
            if self._path != ":memory:":
                self._lock = os.open(f"{self._path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
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
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    async def ping(self) -> None:
        await self._run(lambda: self.conn.execute("SELECT 1").fetchone())

    async def _query(self, name_or_sql: str, params: dict[str, Any]) -> list[Any]:
        text = Q.get(name_or_sql, name_or_sql)
        return await self._run(lambda: self.conn.execute(text, params).fetchall())

    async def _write(self, name: str, params: dict[str, Any]) -> int:
        return await self._run(self._write_now, name, params)

    async def _script(self, name: str, params: dict[str, Any]) -> None:
        await self._run(self._script_now, name, params)

    def _write_now(self, name: str, params: dict[str, Any]) -> int:
        try:
            with transaction(self.conn, self._lock) as conn:
                return int(conn.execute(Q[name], params).rowcount)
        except sqlite3.IntegrityError as exc:
            raise Conflict(_conflict_detail(exc)) from exc

    def _script_now(self, name: str, params: dict[str, Any]) -> None:
        with transaction(self.conn, self._lock) as conn:
            for statement in Q[name].split(";"):
                conn.execute(statement, params)

    async def _write_batch(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """On the connection's thread, through SQLite's fast path (``sqlite/group_commit/``)."""
        return await self._run(
            lambda: self._writer.write(self.conn, self._lock, batch, deliveries, outcomes)
        )

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
        params["busy_ids"] = list(busy_endpoints)
        return await self._run(self._claim, params)

    def _claim(self, params: dict[str, Any]) -> list[ClaimedDelivery]:
        token = params["lease_token"]
        # A lease lost in a power cut only makes the delivery claimable again, so claims
        # skip the fsync that message and attempt commits keep.
        self.conn.execute("PRAGMA synchronous = NORMAL")
        try:
            return self._claim_now(params, token)
        finally:
            self.conn.execute("PRAGMA synchronous = FULL")

    def _claim_now(self, params: dict[str, Any], token: str) -> list[ClaimedDelivery]:
        """Fair across endpoints: each enabled endpoint that is not busy offers its oldest
        due deliveries (one index probe each), and the oldest of those are leased."""
        busy = set(params["busy_ids"])
        with transaction(self.conn, self._lock) as conn:
            offered: list[tuple[int, str]] = []
            for (endpoint_id,) in conn.execute(Q["enabled_endpoint_ids"]).fetchall():
                if endpoint_id in busy:
                    continue
                probe = {**params, "endpoint_id": endpoint_id}
                offered += [(r[1], r[0]) for r in conn.execute(Q["due_of_endpoint"], probe)]
            offered.sort()
            chosen = [delivery_id for _, delivery_id in offered[: params["limit"]]]
            if not chosen:
                return []
            leased = conn.execute(
                Q["lease_ids"], {**params, "ids": self.dialect.list_param(chosen)}
            ).fetchall()
            if not leased:
                return []
            messages = conn.execute(
                Q["messages_by_ids"],
                {"ids": self.dialect.list_param(list({r["msg_id"] for r in leased}))},
            ).fetchall()
            endpoints = conn.execute(
                Q["endpoints_by_ids"],
                {"ids": self.dialect.list_param(list({r["endpoint_id"] for r in leased}))},
            ).fetchall()
        return rows.claimed_from(leased, messages, endpoints, token, self.codec)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Recorded in the next group commit, beside whatever publishes it carries."""
        await self._group.record(outcomes)

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        params = [rows.defer_params(d, now) for d in deferrals]

        def run() -> None:
            with transaction(self.conn, self._lock) as conn:
                conn.executemany(Q["defer_delivery"], params)

        await self._run(run)

    async def listen(self, wake: Callable[[], None]) -> None:
        """SQLite has no notifications: workers in other processes poll."""
        return None

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
            with transaction(self.conn, self._lock) as conn:
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


def _conflict_detail(exc: sqlite3.IntegrityError) -> str:
    if "uid" in str(exc):
        return "An object with this uid already exists"
    return "The object conflicts with an existing one"
