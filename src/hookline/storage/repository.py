"""``SqlRepository``: the meaning of every store operation, written once for both SQL backends.

The repository is composed of three parts per dialect (``parts.py``), and owns everything
else once: which named query, which parameters, which domain object comes back, the
idempotency reservation, versioned updates, circuits, filters and pages, the assembly of
claims.

- a ``Connector`` (``sqlite/connector.py``, ``postgres/connector.py``): named queries and
  writes, notifications, the schema, and the translation of its driver's errors into
  ``Conflict`` (worded once, in ``conflicts.py``) and ``Unavailable``;
- a ``BatchWriter`` (``sqlite/group_commit/``, ``postgres/writer.py``): how a group commit's
  batch of publishes, routed by the one loop in ``group_commit.route_batch``, and a worker's
  attempt records reach the database, the place where the two dialects really differ;
- a ``Claimer`` (``sqlite/claimer.py``, ``postgres/claimer.py``): the transaction that
  leases due deliveries and reads their messages and endpoints.

Named SQL that reads the same in both dialects is in ``storage/queries.sql``; each
dialect's ``queries.sql`` holds only what differs (``queries.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from hookline.domain.breaker import CircuitState
from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.models import (
    AccessToken,
    Application,
    Attempt,
    ClaimedDelivery,
    Delivery,
    Endpoint,
    EndpointStats,
    EventType,
    Message,
    MessageStatus,
    Page,
)
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.storage import pruning, rows, sql
from hookline.storage.base import (
    AttemptFilter,
    AttemptOutcome,
    Deferral,
    Handoff,
    IdempotencyCompletion,
    IdempotentResponse,
    ListQuery,
    MessageFilter,
    PruneBatch,
)
from hookline.storage.codec import RowCodec
from hookline.storage.group_commit import GroupCommit
from hookline.storage.parts import BatchWriter, Claimer, Connector, Pruner

T = TypeVar("T")

GROUP_COMMIT_MAX = 500
"""Most publishes one commit carries; more wait for the next."""
IDEMPOTENCY_STALE_SECONDS = 60
"""A reservation never finished nor abandoned for this long belongs to a request whose
process died; the next request with its key takes it over."""
IDEMPOTENCY_TRIES = 3
"""Reservations attempted before giving up: a key read as taken may be gone by the time
its record is read (abandoned meanwhile), and is then free to reserve again."""


class SqlRepository:
    """The ``Store`` contract over a dialect's connector, batch writer and claimer."""

    def __init__(
        self,
        connector: Connector,
        writer: BatchWriter,
        claimer: Claimer,
        pruner: Pruner,
        codec: RowCodec,
        *,
        backend: str,
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
    ) -> None:
        """``instrumentation`` hears each group commit (``BatchCommitted``)."""
        self._db = connector
        self.dialect = connector.dialect
        self.codec = codec
        """Encodes the columns that hold secrets (``storage/codec.py``), on every backend."""
        self._writer = writer
        self._claimer = claimer
        self._pruner = pruner
        self._group = GroupCommit(
            writer.write, GROUP_COMMIT_MAX, backend=backend, instrumentation=instrumentation
        )

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect; initialise an empty database; refuse a schema that is behind or ahead."""
        await self._db.open()

    async def migrate(self) -> list[int]:
        return await self._db.migrate()

    async def close(self) -> None:
        await self._db.close()

    async def ping(self) -> None:
        await self._db.ping()

    async def listen(self, wake: Callable[[], None]) -> None:
        await self._db.listen(wake)

    # -- helpers ------------------------------------------------------------------------

    async def _one(
        self, name: str, params: dict[str, Any], convert: Callable[[Any], T]
    ) -> T | None:
        found = await self._db.query(name, params)
        return convert(found[0]) if found else None

    async def _page(
        self,
        head: str,
        where: list[str],
        params: dict[str, Any],
        key: str,
        query: ListQuery,
        convert: Callable[[Any], T],
        item_key: Callable[[T], str] = lambda item: str(item.id),  # type: ignore[attr-defined]
    ) -> Page[T]:
        """A page of the named query ``head`` (a SELECT without WHERE) under ``where``."""
        text, named = sql.page_sql(self._db.queries[head], where, params, key, query)
        return sql.shape_page(await self._db.query(text, named), query, convert, item_key)

    async def _versioned(
        self, name: str, params: dict[str, Any], convert: Callable[[Any], T]
    ) -> T | None:
        """Run a compare-and-set update (``WHERE … AND version = :version``, which moves
        the version by one). The row it wrote is ``params`` at the next version, converted
        as a read converts it (times in milliseconds); None if no row was at that version."""
        if await self._db.execute(name, params) == 0:
            return None
        return convert({**params, "version": params["version"] + 1})

    def _endpoint_from(self, row: rows.Row) -> Endpoint:
        return rows.endpoint_from(row, self.codec)

    # -- applications ---------------------------------------------------------------

    async def create_application(self, app: Application) -> None:
        await self._db.execute("insert_application", rows.application_params(app))

    async def get_application(self, id_or_uid: str) -> Application | None:
        return await self._one("get_application", {"key": id_or_uid}, rows.application_from)

    async def list_applications(
        self, query: ListQuery, exclude_without_endpoints: bool = False
    ) -> Page[Application]:
        where = [sql.HAS_ENDPOINTS] if exclude_without_endpoints else []
        return await self._page(
            "page_applications", where, {}, "a.id", query, rows.application_from
        )

    async def update_application(self, app: Application) -> Application | None:
        return await self._versioned(
            "update_application", rows.application_params(app), rows.application_from
        )

    async def delete_application(self, app_id: str) -> None:
        await self._db.script("delete_application", {"app_id": app_id})

    # -- event types ----------------------------------------------------------------

    async def create_event_type(self, event_type: EventType) -> None:
        try:
            await self._db.execute("insert_event_type", rows.event_type_params(event_type))
        except Conflict as exc:
            raise Conflict(
                "An event type with this name already exists", code="event_type_exists"
            ) from exc

    async def get_event_type(self, name: str) -> EventType | None:
        return await self._one("get_event_type", {"name": name}, rows.event_type_from)

    async def list_event_types(self, query: ListQuery, include_archived: bool) -> Page[EventType]:
        return await self._page(
            "page_event_types",
            [] if include_archived else ["archived = 0"],
            {},
            "name",
            query,
            rows.event_type_from,
            lambda et: et.name,
        )

    async def update_event_type(self, event_type: EventType) -> EventType | None:
        return await self._versioned(
            "update_event_type", rows.event_type_params(event_type), rows.event_type_from
        )

    async def delete_event_type(self, name: str) -> None:
        await self._db.execute("delete_event_type", {"name": name})

    async def missing_event_types(self, names: Sequence[str]) -> list[str]:
        existing = await self._db.query(
            "existing_event_types", {"names": self.dialect.list_param(names)}
        )
        found = {r["name"] for r in existing}
        return [n for n in names if n not in found]

    # -- endpoints ------------------------------------------------------------------

    async def create_endpoint(self, endpoint: Endpoint) -> None:
        await self._db.execute("insert_endpoint", rows.endpoint_params(endpoint, self.codec))

    async def get_endpoint(self, app_id: str, id_or_uid: str) -> Endpoint | None:
        return await self._one(
            "get_endpoint", {"app_id": app_id, "key": id_or_uid}, self._endpoint_from
        )

    async def list_endpoints(self, app_id: str, query: ListQuery) -> Page[Endpoint]:
        return await self._page(
            "page_endpoints",
            ["app_id = :app_id"],
            {"app_id": app_id},
            "id",
            query,
            self._endpoint_from,
        )

    async def update_endpoint(self, endpoint: Endpoint) -> Endpoint | None:
        return await self._versioned(
            "update_endpoint", rows.endpoint_params(endpoint, self.codec), self._endpoint_from
        )

    async def delete_endpoint(self, app_id: str, endpoint_id: str) -> None:
        await self._db.script("delete_endpoint", {"app_id": app_id, "endpoint_id": endpoint_id})

    async def endpoint_stats(
        self,
        app_id: str,
        endpoint_id: str,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> EndpointStats:
        params: dict[str, Any] = {"app_id": app_id, "endpoint_id": endpoint_id}
        name = "endpoint_stats"
        if since is not None or until is not None:
            name = "endpoint_stats_between"
            params["since"] = rows.to_ms(since) if since is not None else None
            params["until"] = rows.to_ms(until) if until is not None else None
        found = await self._db.query(name, params)
        return EndpointStats(**{MessageStatus(r["status"]).text: r["n"] for r in found})

    # -- messages -------------------------------------------------------------------

    def attach_handoff(self, handoff: Handoff) -> None:
        self._group.handoff = handoff

    async def publish(
        self,
        messages: Sequence[Message],
        now: datetime,
        only_endpoint: str | None = None,
        completion: IdempotencyCompletion | None = None,
    ) -> list[list[str]]:
        return await self._group.submit(
            messages, int(now.timestamp() * 1000), only_endpoint, completion
        )

    async def get_message(self, app_id: str, id_or_event_id: str) -> Message | None:
        return await self._one(
            "get_message", {"app_id": app_id, "key": id_or_event_id}, rows.message_from
        )

    async def list_messages(
        self, app_id: str, query: ListQuery, filters: MessageFilter
    ) -> Page[Message]:
        where, params = sql.message_where(self.dialect, "m", filters)
        return await self._page(
            "page_messages",
            ["m.app_id = :app_id", *where],
            {"app_id": app_id, **params},
            "m.id",
            query,
            rows.message_from,
        )

    async def expunge_message_content(self, app_id: str, msg_id: str) -> None:
        await self._db.execute("expunge_message", {"app_id": app_id, "msg_id": msg_id})

    # -- deliveries -----------------------------------------------------------------

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
        params["busy"] = list(busy_endpoints)
        leased, messages, endpoints = await self._claimer.lease(params)
        if not leased:
            return []
        return rows.claimed_from(leased, messages, endpoints, params["lease_token"], self.codec)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        await self._writer.complete(outcomes, self._group)

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        await self._db.execute_many(
            "defer_delivery", [rows.defer_params(d, now) for d in deferrals]
        )

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None:
        params = {"app_id": app_id, "msg_id": msg_id, "endpoint_id": endpoint_id}
        await self._db.execute("resend", {**params, "now": rows.to_ms(now)})

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
        return await self._db.execute("recover", params)

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None:
        return await self._one(
            "get_delivery", {"msg_id": msg_id, "endpoint_id": endpoint_id}, rows.delivery_from
        )

    # -- workers --------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, now: datetime) -> None:
        await self._db.execute("register_worker", rows.worker_params(worker_id, now))

    async def renew_leases(self, worker_id: str, lease_until: datetime) -> None:
        await self._db.execute(
            "renew_leases", {"worker_id": worker_id, "lease_until": rows.to_ms(lease_until)}
        )

    async def unregister_worker(self, worker_id: str) -> None:
        await self._db.execute("unregister_worker", {"worker_id": worker_id})

    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None:
        await self._db.script(
            "release_stalled",
            {"stalled_before": rows.to_ms(stalled_before), "now": rows.to_ms(now)},
        )

    # -- circuits -------------------------------------------------------------------

    async def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        if state is None:
            await self._db.execute("close_circuit", {"endpoint_id": endpoint_id})
        else:
            await self._db.execute("open_circuit", rows.circuit_params(endpoint_id, state))

    async def open_circuits(self, now: datetime) -> dict[str, CircuitState]:
        found = await self._db.query("open_circuits", {"now": rows.to_ms(now)})
        return {r["endpoint_id"]: rows.circuit_from(r) for r in found}

    # -- attempts -------------------------------------------------------------------

    async def get_attempt(self, app_id: str, attempt_id: str) -> Attempt | None:
        return await self._one(
            "get_attempt", {"app_id": app_id, "attempt_id": attempt_id}, rows.attempt_from
        )

    async def list_attempts(
        self, app_id: str, query: ListQuery, filters: AttemptFilter, msg_id: str | None
    ) -> Page[Attempt]:
        head, where, params = sql.attempt_query(self.dialect, app_id, filters, msg_id)
        return await self._page(head, where, params, "a.id", query, rows.attempt_from)

    async def list_attempted_messages(
        self,
        app_id: str,
        endpoint_id: str,
        query: ListQuery,
        filters: MessageFilter,
        status: MessageStatus | None = None,
    ) -> Page[tuple[Message, Delivery]]:
        where, params = sql.message_where(self.dialect, "m", filters)
        if status is not None:
            where.append("d.status = :delivery_status")
            params["delivery_status"] = int(status)
        return await self._page(
            "page_attempted_messages",
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
            "page_attempted_destinations",
            ["e.app_id = :app_id"],
            {"app_id": app_id, "msg_id": msg_id},
            "e.id",
            query,
            lambda row: rows.endpoint_with_delivery(row, self.codec),
            lambda pair: pair[0].id,
        )

    # -- tokens and idempotency -----------------------------------------------------

    async def create_token(self, token: AccessToken) -> None:
        await self._db.execute("insert_token", rows.token_params(token))

    async def find_token(self, token_hash: str) -> AccessToken | None:
        return await self._one("find_token", {"token_hash": token_hash}, rows.token_from)

    async def count_admin_tokens(self) -> int:
        found = await self._db.query("count_admin_tokens", {})
        return int(found[0][0])

    async def idempotency_begin(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> IdempotentResponse | None:
        """One statement reserves a new key or takes over a stale one; otherwise the key's
        record is read. If that record is gone meanwhile (abandoned), the key is free again."""
        params = {
            "scope": scope,
            "key": key,
            "request_hash": request_hash,
            "now": rows.to_ms(now),
            "stale_before": rows.to_ms(now - timedelta(seconds=IDEMPOTENCY_STALE_SECONDS)),
        }
        for _ in range(IDEMPOTENCY_TRIES):
            if await self._db.execute("idempotency_reserve", params) == 1:
                return None
            found = await self._db.query("idempotency_get", params)
            if found:
                return rows.idempotent_response_from(found[0])
        raise Unavailable("the idempotency key kept changing hands; retry the request")

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None:
        await self._db.execute(
            "idempotency_finish", {"scope": scope, "key": key, "status": status, "body": body}
        )

    async def idempotency_abandon(self, scope: str, key: str) -> None:
        await self._db.execute("idempotency_abandon", {"scope": scope, "key": key})

    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None:
        await self._db.script(
            "purge_expired",
            {"now": rows.to_ms(now), "before": rows.to_ms(idempotency_before)},
        )

    # -- retention ------------------------------------------------------------------

    async def prune_batch(
        self, before: datetime, after_id: str, limit: int, dry_run: bool = False
    ) -> PruneBatch:
        return await self._pruner.prune(pruning.scan_params(before, after_id, limit), dry_run)

    async def reclaim_space(self, max_pages: int) -> int:
        return await self._pruner.reclaim(max_pages)

    async def compact(self) -> bool:
        return await self._pruner.compact()
