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

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

import orjson

from hookline.domain import ratelimit
from hookline.domain.anomaly import Anomaly, Counts, Point, Subject
from hookline.domain.audit import AuditEntry, AuditFilter
from hookline.domain.breaker import CircuitState, ProbeGrant
from hookline.domain.errors import Conflict, Unavailable
from hookline.domain.failure_groups import (
    FailedAttempt,
    FailureGroup,
    GroupFilter,
    ResolvedBy,
    Sighting,
)
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
from hookline.domain.networks import Network
from hookline.domain.networks import encode as encode_networks
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.domain.policy import ApplicationPolicy
from hookline.domain.ratelimit import SlotGrant, SlotRequest, Slowdown
from hookline.domain.rollups import (
    COUNT_COLUMNS,
    MINUTE_SECONDS,
    EndpointShare,
    Rollup,
    RollupSummary,
)
from hookline.domain.search import Cursor, DeliveryRow, DeliverySearch
from hookline.domain.tasks import BackgroundTask, DeadLetter, TaskKind, TaskRow, TaskStatus
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation
from hookline.storage import pruning, rows, sql
from hookline.storage import search as delivery_search
from hookline.storage.base import (
    AttemptFilter,
    AttemptOutcome,
    BacklogSample,
    DeadLetterFilter,
    Deferral,
    Diversion,
    EndpointChanged,
    EndpointFailure,
    Handoff,
    IdempotencyCompletion,
    IdempotentResponse,
    ListQuery,
    MessageFilter,
    PruneBatch,
    QueueHealth,
    RekeyBatch,
    TaskCheckpoint,
)
from hookline.storage.codec import RowCodec
from hookline.storage.group_commit import GroupCommit
from hookline.storage.parts import BatchWriter, Claimer, Connector, Pruner

T = TypeVar("T")
_NEVER_MS = 2**62
"""A time after every stored one: a manual resolve's bound on the last failure."""

GROUP_COMMIT_MAX = 500
"""Most publishes one commit carries; more wait for the next."""
IDEMPOTENCY_LEASE_SECONDS = 10
"""A reservation is a lease: a running request renews it (``idempotency_renew``, every 2 s:
``api/reservations.py``), so one not renewed for this long belongs to a request whose process
died, and the next request with its key takes it over."""
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
        self._unsettled: dict[str, set[str]] = {}
        """Lease tokens, by worker, of claims and hand-overs whose outcome this process never
        learned (the connection dropped while they committed): released at the next claim or
        heartbeat (``_settle_leases``)."""
        self._pruner = pruner
        self._group = GroupCommit(
            writer.write,
            GROUP_COMMIT_MAX,
            backend=backend,
            instrumentation=instrumentation,
            on_unsettled=self._unsettled_lease,
        )

    # -- lifecycle --------------------------------------------------------------------

    async def open(self) -> None:
        """Connect; initialise an empty database; refuse a schema that is behind or ahead."""
        await self._db.open()

    async def migrate(self) -> list[int]:
        return await self._db.migrate()

    async def close(self) -> None:
        await self._db.close()

    async def listen(
        self, wake: Callable[[], None], endpoint_changed: EndpointChanged | None = None
    ) -> None:
        await self._db.listen(wake, endpoint_changed)

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
        # The operational webhooks' reserved application is never listed.
        where = ["a.id <> :reserved"]
        if exclude_without_endpoints:
            where.append(sql.HAS_ENDPOINTS)
        params = {"reserved": OPERATIONAL_APP_ID}
        return await self._page(
            "page_applications", where, params, "a.id", query, rows.application_from
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

    async def count_endpoints(self, app_id: str) -> int:
        found = await self._db.query("count_endpoints", {"app_id": app_id})
        return int(found[0]["n"])

    async def update_endpoint(self, endpoint: Endpoint) -> Endpoint | None:
        return await self._versioned(
            "update_endpoint", rows.endpoint_params(endpoint, self.codec), self._endpoint_from
        )

    async def endpoint_states(self, endpoint_ids: Collection[str]) -> dict[str, tuple[int, bool]]:
        if not endpoint_ids:
            return {}
        params = {"ids": self.dialect.list_param(sorted(endpoint_ids))}
        found = await self._db.query("endpoint_states", params)
        return {r["id"]: (int(r["version"]), bool(r["disabled"])) for r in found}

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

    async def endpoint_rollups(
        self,
        endpoint_id: str,
        period_seconds: int,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> list[Rollup]:
        params = {
            "endpoint_id": endpoint_id,
            "period": period_seconds,
            "start": rows.to_ms(start),
            "end": rows.to_ms(end),
        }
        found = await self._db.query("endpoint_rollups", params)
        return [rows.rollup_from(r, period_seconds) for r in found]

    async def sum_rollups(
        self,
        endpoint_id: str,
        period_seconds: int,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> RollupSummary:
        params = {
            "endpoint_id": endpoint_id,
            "period": period_seconds,
            "start": rows.to_ms(start),
            "end": rows.to_ms(end),
        }
        (found,) = await self._db.query("endpoint_rollup_sums", params)
        return RollupSummary(tuple(int(found[column]) for column in COUNT_COLUMNS))

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
        endpoint_caps: Mapping[str, int] | None = None,
    ) -> list[ClaimedDelivery]:
        await self._settle_leases(now)
        params = rows.claim_params(limit, now, lease_until, worker_id, per_endpoint)
        params["busy"] = list(busy_endpoints)
        params["capped"] = list(endpoint_caps or ())
        params["caps"] = list((endpoint_caps or {}).values())
        try:
            leased, messages, endpoints = await self._claimer.lease(params)
        except BaseException:
            # The claim may have committed without our hearing it: its rows would sit leased
            # to a live worker that does not know them until the lease ran out.
            self._unsettled_lease(worker_id, params["lease_token"])
            raise
        if not leased:
            return []
        return rows.claimed_from(leased, messages, endpoints, params["lease_token"], self.codec)

    async def complete(self, outcomes: Sequence[AttemptOutcome]) -> None:
        await self._writer.complete(outcomes, self._group)

    async def defer(self, deferrals: Sequence[Deferral], now: datetime) -> None:
        await self._db.execute_many(
            "defer_delivery", [rows.defer_params(d, now) for d in deferrals]
        )

    async def divert(self, diversions: Sequence[Diversion]) -> None:
        for diversion in diversions:
            await self._db.script("divert_delivery", rows.divert_params(diversion))

    async def resend(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> None:
        params = {"app_id": app_id, "msg_id": msg_id, "endpoint_id": endpoint_id}
        await self._db.execute("resend", {**params, "now": rows.to_ms(now)})

    async def skip_held(self, app_id: str, msg_id: str, endpoint_id: str, now: datetime) -> bool:
        params = {"app_id": app_id, "msg_id": msg_id, "endpoint_id": endpoint_id}
        return await self._db.execute("skip_held", {**params, "now": rows.to_ms(now)}) == 1

    async def get_delivery(self, msg_id: str, endpoint_id: str) -> Delivery | None:
        return await self._one(
            "get_delivery", {"msg_id": msg_id, "endpoint_id": endpoint_id}, rows.delivery_from
        )

    # -- workers --------------------------------------------------------------------

    async def heartbeat(self, worker_id: str, now: datetime) -> None:
        await self._db.execute("register_worker", rows.worker_params(worker_id, now))

    async def renew_leases(
        self, worker_id: str, lease_tokens: Collection[str], lease_until: datetime
    ) -> None:
        params = {
            "worker_id": worker_id,
            "tokens": self.dialect.list_param(list(lease_tokens)),
            "lease_until": rows.to_ms(lease_until),
        }
        await self._db.execute("renew_leases", params)

    async def unregister_worker(self, worker_id: str) -> None:
        await self._db.execute("unregister_worker", {"worker_id": worker_id})

    async def queue_health(self, alive_since: datetime) -> QueueHealth:
        found = await self._db.query("queue_health", {"alive_since": rows.to_ms(alive_since)})
        live_workers, first_due = found[0]
        return QueueHealth(live_workers=int(live_workers), first_due_at=rows.from_ms(first_due))

    async def backlog_sample(self, now: datetime, alive_since: datetime) -> BacklogSample:
        params = {"now": rows.to_ms(now), "alive_since": rows.to_ms(alive_since)}
        found = await self._db.query("backlog_sample", params)
        due, oldest, live_workers, disabled, open_breakers = found[0]
        return BacklogSample(
            due=int(due),
            oldest_due_at=rows.from_ms(oldest),
            live_workers=int(live_workers),
            disabled_endpoints=int(disabled),
            open_breakers=int(open_breakers),
        )

    async def release_stalled(self, stalled_before: datetime, now: datetime) -> None:
        await self._settle_leases(now)
        await self._db.script(
            "release_stalled",
            {"stalled_before": rows.to_ms(stalled_before), "now": rows.to_ms(now)},
        )

    def _unsettled_lease(self, worker_id: str, lease_token: str) -> None:
        self._unsettled.setdefault(worker_id, set()).add(lease_token)

    async def _settle_leases(self, now: datetime) -> None:
        """Put back in the queue what claims and hand-overs of unknown outcome may have
        leased; a token stays until its release has committed."""
        for worker_id, tokens in [(w, set(t)) for w, t in self._unsettled.items()]:
            params = {
                "worker_id": worker_id,
                "tokens": self.dialect.list_param(sorted(tokens)),
                "now": rows.to_ms(now),
            }
            await self._db.execute("release_leases", params)
            left = self._unsettled.pop(worker_id, set()) - tokens
            if left:
                self._unsettled[worker_id] = left

    # -- circuits -------------------------------------------------------------------

    async def save_circuit(self, endpoint_id: str, state: CircuitState | None) -> None:
        if state is None:
            await self._db.execute("close_circuit", {"endpoint_id": endpoint_id})
        else:
            await self._db.execute("open_circuit", rows.circuit_params(endpoint_id, state))

    async def open_circuits(self, now: datetime) -> dict[str, CircuitState]:
        found = await self._db.query("open_circuits", {})
        return {r["endpoint_id"]: rows.circuit_from(r) for r in found}

    async def claim_probe(
        self, endpoint_id: str, worker_id: str, now: datetime, probe_until: datetime
    ) -> tuple[ProbeGrant, CircuitState | None]:
        params = {
            "endpoint_id": endpoint_id,
            "worker_id": worker_id,
            "now": rows.to_ms(now),
            "probe_until": rows.to_ms(probe_until),
        }
        if await self._db.execute("claim_probe", params) == 1:
            return ProbeGrant.GRANTED, None
        state = await self._one("get_circuit", params, rows.circuit_from)
        return (ProbeGrant.CLOSED if state is None else ProbeGrant.TAKEN), state

    async def circuits_of(self, endpoint_ids: Sequence[str]) -> dict[str, CircuitState]:
        if not endpoint_ids:
            return {}
        found = await self._db.query(
            "circuits_by_ids", {"ids": self.dialect.list_param(endpoint_ids)}
        )
        return {r["endpoint_id"]: rows.circuit_from(r) for r in found}

    # -- failing endpoints ------------------------------------------------------------

    async def mark_endpoints_failing(self, endpoint_ids: Sequence[str], since: datetime) -> None:
        if endpoint_ids:
            params = {"ids": self.dialect.list_param(endpoint_ids), "since": rows.dt_to_ms(since)}
            await self._db.execute("mark_endpoints_failing", params)

    async def mark_endpoints_healthy(self, endpoint_ids: Sequence[str]) -> dict[str, datetime]:
        if not endpoint_ids:
            return {}
        params = {"ids": self.dialect.list_param(endpoint_ids)}
        (ended,) = await self._db.write_returning("mark_endpoints_healthy", [params])
        return {endpoint_id: rows.ms_to_dt(since) for endpoint_id, since in ended}

    async def failing_endpoints(self, before: datetime) -> list[EndpointFailure]:
        found = await self._db.query("failing_endpoints", {"before": rows.dt_to_ms(before)})
        return [rows.endpoint_failure_from(r) for r in found]

    async def advance_failure_step(self, endpoint_id: str, since: datetime, step: int) -> bool:
        params = {"endpoint_id": endpoint_id, "since": rows.dt_to_ms(since), "step": step}
        return await self._db.execute("advance_failure_step", params) > 0

    # -- background tasks -------------------------------------------------------------

    async def create_task(self, task: BackgroundTask) -> None:
        await self._db.execute("insert_background_task", rows.task_params(task))

    async def get_task(self, task_id: str) -> BackgroundTask | None:
        return await self._one("get_background_task", {"task_id": task_id}, rows.task_from)

    async def list_tasks(
        self,
        app_id: str | None,
        query: ListQuery,
        statuses: Sequence[TaskStatus] | None = None,
        kinds: Sequence[TaskKind] | None = None,
    ) -> Page[BackgroundTask]:
        where: list[str] = []
        params: dict[str, Any] = {}
        if app_id is not None:
            where.append("app_id = :app_id")
            params["app_id"] = app_id
        if statuses is not None:
            where.append(self.dialect.in_list.format(expr="status", param="statuses"))
            params["statuses"] = self.dialect.list_param([s.value for s in statuses])
        if kinds is not None:
            where.append(self.dialect.in_list.format(expr="task", param="kinds"))
            params["kinds"] = self.dialect.list_param([k.value for k in kinds])
        return await self._page("page_background_tasks", where, params, "id", query, rows.task_from)

    async def lease_task(
        self, now: datetime, lease_until: datetime, lease_token: str
    ) -> BackgroundTask | None:
        params = {
            "now": rows.to_ms(now),
            "lease_until": rows.to_ms(lease_until),
            "lease_token": lease_token,
        }
        due = await self._db.query("due_background_task", params)
        if (
            not due
            or await self._db.execute("lease_background_task", {**params, "task_id": due[0]["id"]})
            == 0
        ):
            return None
        return await self.get_task(due[0]["id"])

    async def release_task(self, task_id: str, lease_token: str, now: datetime) -> None:
        params = {"task_id": task_id, "lease_token": lease_token, "now": rows.to_ms(now)}
        await self._db.execute("release_background_task", params)

    async def cancel_task(self, task_id: str, now: datetime) -> bool:
        params = {"task_id": task_id, "now": rows.to_ms(now)}
        return await self._db.execute("cancel_background_task", params) == 1

    async def finish_task(
        self, task_id: str, lease_token: str, result: dict[str, object], now: datetime
    ) -> bool:
        params = {"task_id": task_id, "lease_token": lease_token, "now": rows.to_ms(now)}
        params["result"] = rows.task_result_json(result)
        return await self._db.execute("finish_background_task", params) == 1

    async def fail_task(self, task_id: str, lease_token: str, error: str, now: datetime) -> None:
        params = {"task_id": task_id, "lease_token": lease_token, "error": error}
        await self._db.execute("fail_background_task", {**params, "now": rows.to_ms(now)})

    async def task_rows(self, task: BackgroundTask, cursor: str, limit: int) -> list[TaskRow]:
        params: dict[str, Any] = {"app_id": task.app_id, "endpoint_id": task.endpoint_id}
        if task.kind is TaskKind.PURGE_CONTENT:
            params.update(cursor=cursor, upper=task.upper_key, limit=limit)
            found = await self._db.query("task_content_rows", params)
            return [rows.task_row_from(row, "msg_id") for row in found]
        if task.kind is TaskKind.REPLAY_MISSING:
            params.update(cursor=cursor, upper=task.upper_key, limit=limit)
            found = await self._db.query("task_message_rows", params)
            return [rows.task_row_from(row, "msg_id") for row in found]
        if task.kind is TaskKind.REDRIVE:
            where = ["dl.app_id = :app_id", "dl.status = 2"]
            key = "delivery_id"
        else:
            where = ["dl.app_id = :app_id", "dl.endpoint_id = :endpoint_id", "dl.msg_id < :upper"]
            params["upper"] = task.upper_key
            key = "msg_id"
        text, named = sql.page_sql(
            self._db.queries["page_delivery_rows"],
            where,
            params,
            f"dl.{key}",
            ListQuery(limit=limit - 1, iterator=cursor),  # a page reads one row more
        )
        return [rows.task_row_from(row, key) for row in await self._db.query(text, named)]

    async def checkpoint_task(self, checkpoint: TaskCheckpoint) -> bool:
        task = checkpoint.task
        new = checkpoint.new_deliveries
        params = {
            "task_id": task.id,
            "app_id": task.app_id,
            "endpoint_id": task.endpoint_id,
            "lease_token": checkpoint.lease_token,
            "old_cursor": task.cursor,
            "new_cursor": checkpoint.cursor,
            "scanned": checkpoint.scanned,
            "queued": len(checkpoint.requeue) + len(new) + len(checkpoint.expunge),
            "status": (TaskStatus.FINISHED if checkpoint.finished else TaskStatus.RUNNING).value,
            "lease_until": rows.to_ms(checkpoint.lease_until),
            "now": rows.to_ms(checkpoint.now),
            "requeue": self.dialect.list_param(checkpoint.requeue),
            "new_ids": self.dialect.list_param([delivery_id for delivery_id, _ in new]),
            "new_msgs": self.dialect.list_param([msg_id for _, msg_id in new]),
            "expunge": self.dialect.list_param(checkpoint.expunge),
        }
        await self._db.script("task_checkpoint", params)
        found = await self._db.query("get_background_task", {"task_id": task.id})
        return bool(found) and (
            found[0]["lease_token"] == checkpoint.lease_token
            and found[0]["cursor"] == checkpoint.cursor
            and found[0]["status"] == params["status"]
            and found[0]["updated_at"] == params["now"]
        )

    async def list_dead_letters(
        self, app_id: str, query: ListQuery, filters: DeadLetterFilter
    ) -> Page[DeadLetter]:
        where = ["dl.app_id = :app_id", "dl.status = 2"]
        params: dict[str, Any] = {"app_id": app_id}
        if filters.endpoint_id is not None:
            where.append("dl.endpoint_id = :endpoint_id")
            params["endpoint_id"] = filters.endpoint_id
        if filters.event_types:
            where.append(self.dialect.in_list.format(expr="dl.event_type", param="event_types"))
            params["event_types"] = self.dialect.list_param(filters.event_types)
        if filters.status_code_class is not None:
            low = filters.status_code_class
            where.append("dl.last_code >= :code_lo AND dl.last_code < :code_hi")
            params.update(code_lo=low, code_hi=low + 100 if low else 1)
        if filters.since is not None:
            where.append("dl.created_at >= :since")
            params["since"] = rows.to_ms(filters.since)
        if filters.until is not None:
            where.append("dl.created_at < :until")
            params["until"] = rows.to_ms(filters.until)
        return await self._page(
            "page_delivery_rows",
            where,
            params,
            "dl.delivery_id",
            query,
            lambda row: rows.task_row_from(row, "delivery_id"),
            lambda letter: letter.key,
        )

    async def application_policies(self) -> dict[str, ApplicationPolicy]:
        found = await self._db.query("application_policies", {})
        return {r["id"]: rows.application_policy_from(r) for r in found}

    # -- rate limits ----------------------------------------------------------------

    async def take_rate_slots(
        self, requests: Sequence[SlotRequest], now: datetime
    ) -> dict[str, SlotGrant]:
        if not requests:
            return {}
        now_us = rows.to_us(now)
        params = [rows.rate_slot_params(request, now_us) for request in requests]
        # A grant lost in a power cut is at most the horizon's worth of one endpoint's slots.
        found = await self._db.write_returning("take_rate_slots", params, durable=False)
        return {
            request.endpoint_id: rows.slot_grant_from(result[0], request.interval_us)
            for request, result in zip(requests, found, strict=True)
        }

    async def slow_endpoint(self, endpoint_id: str, rate: float, now: datetime) -> None:
        params = {"endpoint_id": endpoint_id, "slow_rate": rate, "now": rows.to_ms(now)}
        await self._db.execute("slow_rate_slots", params)

    async def endpoint_slowdown(self, endpoint_id: str) -> Slowdown | None:
        return await self._one(
            "slowdown_of_endpoint", {"endpoint_id": endpoint_id}, rows.slowdown_from
        )

    async def slowed_endpoints(self, now: datetime) -> dict[str, Slowdown]:
        since = now - timedelta(seconds=ratelimit.RECOVERY_SECONDS * ratelimit.RECOVERY_DOUBLINGS)
        found = await self._db.query("slowed_endpoints", {"since": rows.to_ms(since)})
        return {r["endpoint_id"]: rows.slowdown_from(r) for r in found}

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

    async def get_token(self, token_id: str) -> AccessToken | None:
        return await self._one("get_token", {"id": token_id}, rows.token_from)

    async def list_tokens(self, app_id: str | None = None) -> list[AccessToken]:
        found = await self._db.query("list_tokens", {"app_id": app_id})
        return [rows.token_from(row) for row in found]

    async def delete_token(self, token_id: str) -> bool:
        return await self._db.execute("delete_token", {"id": token_id}) == 1

    async def expire_token(self, token_id: str, until: datetime) -> bool:
        params = {"id": token_id, "until": rows.to_ms(until)}
        return await self._db.execute("expire_token", params) == 1

    async def touch_token(self, token_id: str, now: datetime) -> None:
        await self._db.execute("touch_token", {"id": token_id, "now": rows.to_ms(now)})

    async def set_token_networks(self, token_id: str, networks: tuple[Network, ...] | None) -> bool:
        params = {"id": token_id, "allowed_networks": encode_networks(networks)}
        return await self._db.execute("set_token_networks", params) == 1

    async def mark_configured_token(self, token_id: str) -> None:
        await self._db.execute("mark_configured_token", {"id": token_id})

    async def delete_configured_tokens(self, keep_hash: str, keep_legacy_hash: str) -> int:
        params = {"token_hash": keep_hash, "legacy_hash": keep_legacy_hash}
        return await self._db.execute("delete_configured_tokens", params)

    async def server_key(self, name: str, candidate: str, now: datetime) -> str:
        params = {"name": name, "value": candidate, "now": rows.to_ms(now)}
        await self._db.execute("insert_server_key", params)
        found = await self._db.query("get_server_key", params)
        return str(found[0][0])

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
            "stale_before": rows.to_ms(now - timedelta(seconds=IDEMPOTENCY_LEASE_SECONDS)),
        }
        for _ in range(IDEMPOTENCY_TRIES):
            if await self._db.execute("idempotency_reserve", params) == 1:
                return None
            found = await self._db.query("idempotency_get", params)
            if found:
                return rows.idempotent_response_from(found[0], scope, key, self.codec)
        raise Unavailable("the idempotency key kept changing hands; retry the request")

    async def idempotency_renew(
        self, scope: str, key: str, request_hash: str, now: datetime
    ) -> None:
        params = {"scope": scope, "key": key, "request_hash": request_hash, "now": rows.to_ms(now)}
        await self._db.execute("idempotency_renew", params)

    async def idempotency_finish(self, scope: str, key: str, status: int, body: bytes) -> None:
        stored = rows.idempotent_body(scope, key, body, self.codec)
        await self._db.execute(
            "idempotency_finish", {"scope": scope, "key": key, "status": status, "body": stored}
        )

    async def idempotency_abandon(self, scope: str, key: str) -> None:
        await self._db.execute("idempotency_abandon", {"scope": scope, "key": key})

    async def purge_expired(self, now: datetime, idempotency_before: datetime) -> None:
        await self._db.script(
            "purge_expired",
            {"now": rows.to_ms(now), "before": rows.to_ms(idempotency_before)},
        )

    async def expire_payloads(self, now: datetime, limit: int) -> int:
        return await self._db.execute("expire_payloads", {"now": rows.to_ms(now), "limit": limit})

    # -- retention ------------------------------------------------------------------

    async def prune_batch(
        self, before: datetime, after_id: str, limit: int, dry_run: bool = False
    ) -> PruneBatch:
        return await self._pruner.prune(pruning.scan_params(before, after_id, limit), dry_run)

    async def prune_tasks(self, before: datetime, dry_run: bool = False) -> int:
        params = {"before": rows.to_ms(before)}
        if dry_run:
            return int((await self._db.query("prunable_tasks", params))[0][0])
        return await self._db.execute("prune_tasks", params)

    # -- audit log --------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> None:
        await self._db.execute("insert_audit_entry", rows.audit_params(entry))

    async def list_audit(self, query: ListQuery, filters: AuditFilter) -> Page[AuditEntry]:
        where, params = sql.audit_where(filters)
        return await self._page(
            "page_audit_log", where, params, "al.id", query, rows.audit_entry_from
        )

    async def prune_audit(self, before: datetime, limit: int, dry_run: bool = False) -> int:
        params = {"before": rows.to_ms(before), "limit": limit}
        if dry_run:
            return int((await self._db.query("prunable_audit_log", params))[0][0])
        return await self._db.execute("prune_audit_log", params)

    async def rollup_points(
        self, period_seconds: int, starts: Sequence[datetime], endpoint_ids: Sequence[str]
    ) -> list[Point]:
        if not starts or not endpoint_ids:
            return []
        params = {
            "period": period_seconds,
            "starts": self.dialect.list_param([rows.dt_to_ms(start) for start in starts]),
            "endpoint_ids": self.dialect.list_param(endpoint_ids),
        }
        return [rows.rollup_point_from(r) for r in await self._db.query("rollup_points", params)]

    async def rollup_totals(
        self, period_seconds: int, start: datetime, end: datetime, endpoint_ids: Sequence[str]
    ) -> dict[str, Counts]:
        if not endpoint_ids:
            return {}
        params = {
            "period": period_seconds,
            "start": rows.dt_to_ms(start),
            "end": rows.dt_to_ms(end),
            "endpoint_ids": self.dialect.list_param(endpoint_ids),
        }
        found = await self._db.query("rollup_totals", params)
        return {r[0]: rows.counts_from(r, 1) for r in found}

    async def anomaly_subjects(self) -> list[Subject]:
        found = await self._db.query("anomaly_subjects", {"reserved": OPERATIONAL_APP_ID})
        return [
            Subject(r["app_id"], r["id"], rows.ms_to_dt(r["created_at"]))
            for r in found
            if rows.endpoint_policy_from(r).detects_anomalies
        ]

    async def take_lease(self, name: str, holder: str, now: datetime, until: datetime) -> bool:
        params = {
            "name": name,
            "holder": holder,
            "now": rows.dt_to_ms(now),
            "until": rows.dt_to_ms(until),
        }
        (taken,) = await self._db.write_returning("take_lease", [params], durable=False)
        return bool(taken)

    async def open_anomalies(self) -> list[Anomaly]:
        return [rows.anomaly_from(r) for r in await self._db.query("open_anomalies", {})]

    async def open_anomaly(self, anomaly: Anomaly) -> bool:
        (opened,) = await self._db.write_returning("open_anomaly", [rows.anomaly_params(anomaly)])
        return bool(opened)

    async def see_anomalies(self, seen: Sequence[tuple[str, float]], now: datetime) -> None:
        if seen:
            at = rows.dt_to_ms(now)
            params = [{"id": i, "observed": observed, "now": at} for i, observed in seen]
            await self._db.execute_many("see_anomaly", params)

    async def resolve_anomaly(self, anomaly_id: str, now: datetime) -> bool:
        params = {"id": anomaly_id, "now": rows.dt_to_ms(now)}
        (ended,) = await self._db.write_returning("resolve_anomaly", [params])
        return bool(ended)

    async def list_anomalies(
        self, query: ListQuery, status: str | None, app_id: str | None = None
    ) -> Page[Anomaly]:
        where = {
            None: [],
            "open": ["an.resolved_at IS NULL"],
            "resolved": ["an.resolved_at IS NOT NULL"],
        }[status]
        params: dict[str, Any] = {}
        if app_id is not None:
            where = [*where, "an.app_id = :app_id"]
            params["app_id"] = app_id
        return await self._page("page_anomalies", where, params, "an.id", query, rows.anomaly_from)

    async def prune_anomalies(self, before: datetime, limit: int, dry_run: bool = False) -> int:
        params = {"before": rows.to_ms(before), "limit": limit}
        if dry_run:
            return int((await self._db.query("prunable_anomalies", params))[0][0])
        return await self._db.execute("prune_anomalies", params)

    async def endpoints_with_failures(self, start: datetime, end: datetime) -> list[str]:
        params = {
            "period": MINUTE_SECONDS,
            "start": rows.dt_to_ms(start),
            "end": rows.dt_to_ms(end),
        }
        return [r[0] for r in await self._db.query("endpoints_with_failures", params)]

    async def failed_attempts(
        self, endpoint_id: str, after_id: str, before_id: str, limit: int
    ) -> list[FailedAttempt]:
        params = {
            "endpoint_id": endpoint_id,
            "after_id": after_id,
            "before_id": before_id,
            "limit": limit,
        }
        found = await self._db.query("failed_attempts", params)
        return [rows.failed_attempt_from(r) for r in found]

    async def scan_cursor(self, name: str) -> datetime | None:
        found = await self._db.query("scan_cursor", {"name": name})
        return rows.ms_to_dt(found[0][0]) if found else None

    async def advance_scan_cursor(
        self, name: str, previous: datetime | None, until: datetime
    ) -> bool:
        params = {"name": name, "previous": rows.to_ms(previous), "until": rows.dt_to_ms(until)}
        (moved,) = await self._db.write_returning("advance_scan_cursor", [params])
        return bool(moved)

    async def portal_branding(self, app_id: str) -> dict[str, str] | None:
        found = await self._db.query("get_portal_branding", {"app_id": app_id})
        if not found:
            return None
        settings: dict[str, str] = orjson.loads(found[0]["settings"])
        return settings

    async def set_portal_branding(
        self, app_id: str, settings: Mapping[str, str], now: datetime
    ) -> None:
        params = {
            "app_id": app_id,
            "settings": orjson.dumps(dict(settings)).decode(),
            "now": rows.dt_to_ms(now),
        }
        await self._db.execute("put_portal_branding", params)

    async def delete_portal_branding(self, app_id: str) -> bool:
        return await self._db.execute("delete_portal_branding", {"app_id": app_id}) > 0

    async def add_failures(self, sightings: Sequence[Sighting]) -> None:
        if sightings:
            await self._db.execute_many(
                "add_failures", [rows.sighting_params(s) for s in sightings]
            )

    async def failure_group(self, group_id: str) -> FailureGroup | None:
        found = await self._db.query("failure_group", {"id": group_id})
        return rows.failure_group_from(found[0]) if found else None

    async def list_failure_groups(
        self, query: ListQuery, filters: GroupFilter
    ) -> Page[FailureGroup]:
        where: list[str] = []
        params: dict[str, Any] = {}
        for column, value in (
            ("status", None if filters.status is None else filters.status.value),
            ("app_id", filters.app_id),
            ("endpoint_id", filters.endpoint_id),
        ):
            if value is not None:
                where.append(f"fg.{column} = :{column}")
                params[column] = value
        return await self._page(
            "page_failure_groups", where, params, "fg.id", query, rows.failure_group_from
        )

    async def quiet_failure_groups(
        self, before: datetime, limit: int, after: FailureGroup | None = None
    ) -> list[FailureGroup]:
        params = {
            "before": rows.dt_to_ms(before),
            "limit": limit,
            "after_seen": -1 if after is None else rows.dt_to_ms(after.last_seen_at),
            "after_id": "" if after is None else after.id,
        }
        found = await self._db.query("quiet_failure_groups", params)
        return [rows.failure_group_from(r) for r in found]

    async def acknowledge_failure_group(self, group_id: str, now: datetime) -> bool:
        params = {"id": group_id, "now": rows.dt_to_ms(now)}
        (changed,) = await self._db.write_returning("acknowledge_failure_group", [params])
        return bool(changed)

    async def resolve_failure_group(
        self, group_id: str, now: datetime, by: ResolvedBy, seen_until: datetime | None = None
    ) -> bool:
        params = {
            "id": group_id,
            "now": rows.dt_to_ms(now),
            "by": by.value,
            "seen_until": _NEVER_MS if seen_until is None else rows.dt_to_ms(seen_until),
        }
        (changed,) = await self._db.write_returning("resolve_failure_group", [params])
        return bool(changed)

    async def prune_failure_groups(
        self, before: datetime, limit: int, dry_run: bool = False
    ) -> int:
        params = {"before": rows.to_ms(before), "limit": limit}
        if dry_run:
            return int((await self._db.query("prunable_failure_groups", params))[0][0])
        return await self._db.execute("prune_failure_groups", params)

    async def app_attempts(
        self, period_seconds: int, start: datetime, end: datetime
    ) -> dict[str, int]:
        params = {"period": period_seconds, "start": rows.to_ms(start), "end": rows.to_ms(end)}
        found = await self._db.query("app_rollup_sums", params)
        return {r["app_id"]: int(r["attempts"]) for r in found}

    async def prune_rollups(
        self, period_seconds: int, before: datetime, limit: int, dry_run: bool = False
    ) -> int:
        params = {"period": period_seconds, "before": rows.to_ms(before), "limit": limit}
        if dry_run:
            return int((await self._db.query("prunable_rollups", params))[0][0])
        return await self._db.execute("prune_rollups", params)

    async def reclaim_space(self, max_pages: int) -> int:
        return await self._pruner.reclaim(max_pages)

    async def compact(self) -> bool:
        return await self._pruner.compact()

    # -- secrets at rest --------------------------------------------------------------

    async def rekey_batch(self, after_id: str, limit: int, dry_run: bool = False) -> RekeyBatch:
        found = await self._db.query("rekey_page", {"after_id": after_id, "limit": limit})
        writes = [w for w in (rows.rekeyed_params(r, self.codec) for r in found) if w]
        raced = 0
        if writes and not dry_run:
            written = await self._db.write_returning("rekey_write", writes)
            raced = sum(1 for returned in written if not returned)
        return RekeyBatch(
            scanned_to=found[-1]["id"] if len(found) == limit else None,
            scanned=len(found),
            rekeyed=len(writes) - raced,
            raced=raced,
        )

    async def forget_replaced_secrets(self) -> None:
        await self._db.query("forget_replaced_secrets", {})

    # -- the operator console ---------------------------------------------------------

    async def tail_attempts(
        self, after_id: str, limit: int, app_id: str | None = None
    ) -> list[Attempt]:
        params = {"after_id": after_id, "limit": limit, "app_id": app_id}
        return [rows.attempt_from(r) for r in await self._db.query("tail_attempts", params)]

    async def rollup_series(
        self, period_seconds: int, start: datetime, end: datetime
    ) -> list[Rollup]:
        params = {
            "period": period_seconds,
            "start": rows.dt_to_ms(start),
            "end": rows.dt_to_ms(end),
        }
        found = await self._db.query("deployment_rollup_series", params)
        return [
            Rollup(
                rows.ms_to_dt(int(r["start_at"])),
                period_seconds,
                tuple(int(r[column]) for column in COUNT_COLUMNS),
            )
            for r in found
        ]

    async def worst_endpoints(
        self, period_seconds: int, start: datetime, end: datetime, min_attempts: int, limit: int
    ) -> list[EndpointShare]:
        params = {
            "period": period_seconds,
            "start": rows.dt_to_ms(start),
            "end": rows.dt_to_ms(end),
            "min_attempts": min_attempts,
            "limit": limit,
        }
        found = await self._db.query("worst_endpoints", params)
        return [
            EndpointShare(r["app_id"], r["endpoint_id"], int(r["attempts"]), int(r["success"]))
            for r in found
        ]

    # -- deliveries search (storage/search.py) ----------------------------------------

    async def search_deliveries(self, search: DeliverySearch) -> Page[DeliveryRow]:
        fetched = await self._search_rows(search)
        page = fetched[: search.limit]
        codes = await self._latest_codes(sorted({r["msg_id"] for r in page}))
        items = [
            rows.delivery_row_from(r, codes.get((r["msg_id"], r["endpoint_id"]))) for r in page
        ]
        return Page(
            data=items,
            iterator=items[-1].cursor.text() if items else None,
            prev_iterator=None,
            done=len(fetched) <= search.limit,
        )

    async def _search_rows(self, search: DeliverySearch) -> list[Any]:
        """Up to one more row than the page (``storage/search.py`` has the plans). Payload
        words try the first window of messages first, which a common word fills; if it
        does not, a probe of the word index picks between the matches by key and more
        windows."""
        phrases = search.terms.phrases
        if not phrases or search.terms.message_id is not None:
            return await self._search_page(search, None)
        first = await self._fetch_windowed(search, max_windows=1)
        if len(first) > search.limit:
            return first
        text, params = delivery_search.probe_sql(self.dialect, self._db.queries, phrases)
        found = [r["msg_id"] for r in await self._db.query(text, params)]
        if not found:
            return []
        if len(found) <= delivery_search.PROBE_LIMIT:
            return await self._search_page(search, found)
        return await self._fetch_windowed(search)

    async def _search_page(self, search: DeliverySearch, candidates: list[str] | None) -> list[Any]:
        text, params = delivery_search.page_sql(self.dialect, self._db.queries, search, candidates)
        return await self._db.query(text, params)

    async def _fetch_windowed(
        self, search: DeliverySearch, max_windows: int | None = None
    ) -> list[Any]:
        """The many-matches plan: a page gathered from windows of messages, newest first,
        each asking the word index about that window only (``storage/search.py``); at most
        ``max_windows`` of them."""
        found: list[Any] = []
        cursor = search.cursor
        size = delivery_search.FIRST_WINDOW
        high, inclusive = (cursor.msg_id, True) if cursor is not None else (None, False)
        windows = 0
        while len(found) <= search.limit and (max_windows is None or windows < max_windows):
            windows += 1
            name, params = delivery_search.window_sql(high, inclusive, size)
            bounds = (await self._db.query(name, params))[0]
            window = delivery_search.window_from(bounds, size, high)
            if window is None:
                break
            rest = replace(search, cursor=cursor, limit=search.limit - len(found))
            text, params = delivery_search.page_sql(
                self.dialect, self._db.queries, rest, None, window
            )
            found += await self._db.query(text, params)
            if window.low is None:
                break
            high, inclusive, size = window.low, False, size * 2
            cursor = Cursor(window.low, "")
        return found

    async def _latest_codes(self, msg_ids: list[str]) -> dict[tuple[str, str], int]:
        """The status code of each (message, endpoint)'s latest attempt, for one page."""
        if not msg_ids:
            return {}
        found = await self._db.query(
            "search_latest_attempts", {"ids": self.dialect.list_param(msg_ids)}
        )
        return {(r["msg_id"], r["endpoint_id"]): r["response_status_code"] for r in found}
