"""``SqliteStore``: the embedded backend, one file in WAL mode.

sqlite3 is synchronous, so every call runs on one dedicated thread that owns the
connection: the event loop never blocks, and all writes are serialized in-process
without lock contention. Other processes may open the same file (``serve --no-worker``
beside ``worker``); WAL and ``busy_timeout`` make that safe, one writer at a time.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any, TypeVar

import orjson

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
from hookline.storage.group_commit import GroupCommit, PendingPublish, Routed
from hookline.storage.handoff import DeliveryRows
from hookline.storage.migrations import check_version, load_migrations
from hookline.storage.queries import load_queries
from hookline.storage.repository import SqlRepository
from hookline.storage.sqlite import fixed_width

T = TypeVar("T")
R = TypeVar("R")

BUSY_TIMEOUT_MS = 5000
IDEMPOTENCY_STALE_SECONDS = 60
GROUP_COMMIT_MAX = 500
"""Most publishes one commit carries; more wait for the next."""
ROUTES_CACHED_APPS = 4096
"""Applications whose endpoints are kept for routing before the write lock."""
_ENDPOINTS_CHANGED = "hookline: endpoints changed"

Q = load_queries("hookline.storage.sqlite", "queries.sql")
MIGRATIONS = load_migrations("hookline.storage.sqlite")


def path_from_url(url: str) -> str:
    """``sqlite:///relative.db``, ``sqlite:////abs/path.db`` or ``sqlite:///:memory:``."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix):
        raise ValueError(f"not a SQLite URL (expected sqlite:///path): {url!r}")
    return url[len(prefix) :]


@contextmanager
def _write_lock(lock: int | None) -> Iterator[None]:
    """Hold ``lock``, the file that hookline processes queue on before they write.

    SQLite makes a second writer sleep and retry (1 ms, then 2, 5, 10 …) while the first
    commits; several ``serve`` processes on one file would spend their time asleep. A
    blocking ``flock`` hands the write over the moment the holder is done, and it is
    released with the process, even on ``kill -9``. Other programs writing the file are
    still handled by ``busy_timeout``.
    """
    if lock is not None:
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def _transaction(conn: sqlite3.Connection, lock: int | None = None) -> Iterator[sqlite3.Connection]:
    """A write transaction, under the write lock."""
    with _write_lock(lock):
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


class SqliteStore(SqlRepository):
    """The ``Store`` contract on one SQLite file."""

    dialect = sql.SQLITE

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="hookline-sqlite")
        self._conn: sqlite3.Connection | None = None
        self._lock: int | None = None
        self._group = GroupCommit(self._write_batch, GROUP_COMMIT_MAX)
        self._routes = _Routes()

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
            conn.executescript(Q["create_group_commit"])
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

    async def _write(self, name: str, params: dict[str, Any], *, notify: bool = False) -> int:
        """``notify`` needs nothing here: workers in this process are woken by the API."""
        return await self._run(self._write_now, name, params)

    async def _script(self, name: str, params: dict[str, Any]) -> None:
        await self._run(self._script_now, name, params)

    def _write_now(self, name: str, params: dict[str, Any]) -> int:
        try:
            with _transaction(self.conn, self._lock) as conn:
                return int(conn.execute(Q[name], params).rowcount)
        except sqlite3.IntegrityError as exc:
            raise Conflict(_conflict_detail(exc)) from exc

    def _script_now(self, name: str, params: dict[str, Any]) -> None:
        with _transaction(self.conn, self._lock) as conn:
            for statement in Q[name].split(";"):
                conn.execute(statement, params)

    async def _write_batch(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        return await self._run(self._publish_batch, batch, deliveries, outcomes)

    def _publish_batch(
        self,
        batch: Sequence[PendingPublish],
        deliveries: DeliveryRows,
        outcomes: Sequence[AttemptOutcome],
    ) -> list[Routed | Exception]:
        """Every request of the batch and the attempt records that queued meanwhile, in one
        statement and one commit; if a request conflicts, again request by request in
        savepoints, so only it fails.

        When the endpoints of every application in the batch were read before, the batch
        is routed against them and its document built before the write lock is taken, and
        the statement checks under the lock that no endpoint has changed since; other
        processes wait only for the statement. Otherwise, or when one has changed, the
        endpoints are read and the batch routed inside the locked transaction.
        """
        records = _records(outcomes)
        start = deliveries.mark()
        try:
            routes = self._routes.covering(batch)
            if routes is not None:
                routed, params = _group_commit(batch, deliveries, records, routes)
                try:
                    self._commit_alone(params)
                    return list(routed)
                except sqlite3.IntegrityError as exc:
                    if _ENDPOINTS_CHANGED not in str(exc):
                        raise
                    deliveries.undo(start)
            with _transaction(self.conn, self._lock) as conn:
                routes = self._routes.refresh(conn, batch)
                routed, params = _group_commit(batch, deliveries, records, routes)
                conn.execute(Q["group_commit"], params)
                return list(routed)
        except sqlite3.IntegrityError:
            deliveries.undo(start)
        results: list[Routed | Exception] = []
        with _transaction(self.conn, self._lock) as conn:
            routes = self._routes.refresh(conn, batch)
            for request in batch:
                conn.execute("SAVEPOINT publish")
                mark = deliveries.mark()
                try:
                    routed, params = _group_commit([request], deliveries, _NO_RECORDS, routes)
                    conn.execute(Q["group_commit"], params)
                    results += routed
                except sqlite3.IntegrityError:
                    conn.execute("ROLLBACK TO publish")
                    deliveries.undo(mark)
                    results.append(
                        Conflict(
                            "A message with this eventId already exists in this application",
                            code="conflict",
                        )
                    )
                conn.execute("RELEASE publish")
            _, params = _group_commit([], deliveries, records, routes)
            conn.execute(Q["group_commit"], params)
        return results

    def _commit_alone(self, params: dict[str, Any]) -> None:
        """The group commit as a statement of its own, which commits itself: the write lock
        is held for one statement step."""
        with _write_lock(self._lock):
            self.conn.execute(Q["group_commit"], params)

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
        with _transaction(self.conn, self._lock) as conn:
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
        return rows.claimed_from(leased, messages, endpoints, token)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Recorded in the next group commit, beside whatever publishes it carries."""
        await self._group.record(outcomes)

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        params = [rows.defer_params(d, now) for d in deferrals]

        def run() -> None:
            with _transaction(self.conn, self._lock) as conn:
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
            with _transaction(self.conn, self._lock) as conn:
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


class _Routes:
    """The enabled endpoints of recently published-to applications, as of one endpoint
    version, so that a batch can be routed before the write lock."""

    def __init__(self) -> None:
        self.version: int | None = None
        self.by_app: dict[str, list[Endpoint]] = {}

    def covering(self, batch: Sequence[PendingPublish]) -> _Routes | None:
        """Self, if every application of the batch is known; else None."""
        if self.version is None:
            return None
        by_app = self.by_app
        for request in batch:
            for msg in request.messages:
                if msg.app_id not in by_app:
                    return None
        return self

    def refresh(self, conn: sqlite3.Connection, batch: Sequence[PendingPublish]) -> _Routes:
        """Read, inside the write transaction, what the batch's applications route to."""
        version = int(conn.execute(Q["endpoint_version"]).fetchone()[0])
        if version != self.version or len(self.by_app) >= ROUTES_CACHED_APPS:
            self.version = version
            self.by_app = {}
        by_app = self.by_app
        for request in batch:
            for msg in request.messages:
                if msg.app_id not in by_app:
                    by_app[msg.app_id] = [
                        rows.endpoint_from(r)
                        for r in conn.execute(Q["active_endpoints"], {"app_id": msg.app_id})
                    ]
        return self


# The row shapes ``create_group_commit`` reads by position (queries.sql names each order).
_MESSAGE_ROW = itemgetter(
    "id",
    "app_id",
    "event_type",
    "event_id",
    "payload_at",
    "payload_size",
    "channels",
    "tags",
    "created_at",
    "expires_at",
)
_COMPLETION_ROW = itemgetter("scope", "key", "status", "body_at", "body_size")


@dataclass(frozen=True, slots=True)
class _Records:
    """Attempt outcomes as the parts of a group-commit document that record them, and the
    free text those parts point into."""

    doc: dict[str, list[Any]]
    texts: bytes


def _records(outcomes: Sequence[AttemptOutcome]) -> _Records:
    texts = fixed_width.Texts()
    doc: dict[str, list[Any]] = {
        "attempts": [fixed_width.attempt(o.attempt, texts) for o in outcomes],
        "finished": [fixed_width.finished(o) for o in outcomes],
        "disabled": [
            [o.claimed.endpoint.id, rows.to_ms(o.attempt.timestamp)]
            for o in outcomes
            if o.disable_endpoint
        ],
    }
    return _Records(doc, texts.blob())


_NO_RECORDS = _Records({"attempts": [], "finished": [], "disabled": []}, b"")


def _group_commit(
    batch: Sequence[PendingPublish],
    deliveries: DeliveryRows,
    records: _Records,
    routes: _Routes,
) -> tuple[list[Routed], dict[str, Any]]:
    """Route the batch and build the parameters of ``group_commit``: the document, the
    payloads and idempotent responses concatenated, the attempts' texts, and what every
    delivery row of the commit shares (its time and the worker's lease)."""
    routed_all: list[Routed] = []
    messages: list[tuple[Any, ...]] = []
    pending_records: list[str] = []
    leased_records: list[str] = []
    now_ms: int | None = None
    completions: list[tuple[Any, ...]] = []
    blobs: list[bytes] = []
    """Payloads and idempotent responses, concatenated; rows point into them."""
    at = 1  # substr() counts from 1
    by_app = routes.by_app
    for request in batch:
        routed: Routed = []
        for msg in request.messages:
            targets = rows.route(by_app[msg.app_id], msg, request.only_endpoint)
            pending, leased = deliveries.split(msg, targets, request.now_ms)
            pending_records += map(fixed_width.delivery, pending)
            leased_records += map(fixed_width.delivery, leased)
            routed.append([ep.id for ep in targets])
            params = rows.message_params(msg)
            payload = params.pop("payload")
            params["payload_at"] = params["payload_size"] = None
            if payload is not None:
                params["payload_at"] = at
                params["payload_size"] = len(payload)
                at += len(payload)
                blobs.append(payload)
            messages.append(_MESSAGE_ROW(params))
        routed_all.append(routed)
        if now_ms is None or request.now_ms > now_ms:
            now_ms = request.now_ms
        if request.completion is not None:
            completion = rows.completion_params(request.completion)
            body = completion.pop("body")
            completion["body_at"] = at
            completion["body_size"] = len(body)
            at += len(body)
            blobs.append(body)
            completions.append(_COMPLETION_ROW(completion))
    doc = {
        "version": routes.version,
        "messages": messages,
        "pending": pending_records,
        "leased": leased_records,
        "completions": completions,
        **records.doc,
    }
    offer = deliveries.offer
    return routed_all, {
        "doc": orjson.dumps(doc),
        "payloads": b"".join(blobs),
        "texts": records.texts,
        "now": now_ms,
        "lease_token": offer.lease_token if offer is not None else None,
        "lease_until": deliveries.lease_until_ms,
        "worker_id": offer.worker_id if offer is not None else None,
    }


def _conflict_detail(exc: sqlite3.IntegrityError) -> str:
    if "uid" in str(exc):
        return "An object with this uid already exists"
    return "The object conflicts with an existing one"
