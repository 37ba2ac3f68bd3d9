"""Failure groups (``domain/failure_groups.py``): the pass that keeps them, and what an
operator does with them (list, read, acknowledge, resolve, replay).

**Why a background pass and not the recorder.** The recorder's batches are the delivery
path: on SQLite they are written inside the group commit's one statement, on PostgreSQL by
array statements, and every column added there is paid by every attempt. Failure groups
need what the rollups do not hold (the exact status code, an error sample, the messages), so
keeping them per batch would add an upsert per failing key to each batch on both fast
paths. A pass once a minute reads instead what is already written, and only for endpoints
that failed: the minute rollups say which endpoints had a failed attempt in the range (one
indexed read), and for each of those the attempt log is read by its (endpoint, id) index
over the range's ids, a page at a time. A deployment whose endpoints all succeed reads one
index range a minute; the delivery path does not change at all.

Like anomaly detection, every process that runs a worker runs a ``FailureGrouper``, but only
the one holding the job's lease does passes. Where a pass ends is a cursor in the store,
moved by compare-and-set after the pass read its range and before it writes: of two passes
over one range (a lease that ran out mid-pass) only one counts it; a process that dies
between moving the cursor and writing loses that range's counts (the attempt log still
holds the failures).

Every operator action is scoped to the application the caller resolved: an application's
token sees its own groups only, another application's are absent (404).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from hookline.domain import audit as a
from hookline.domain import failure_groups as rules
from hookline.domain import ids
from hookline.domain.errors import Conflict, NotFound, Unavailable
from hookline.domain.failure_groups import (
    FailedAttempt,
    FailureGroup,
    GroupFilter,
    GroupStatus,
    ResolvedBy,
    Sighting,
)
from hookline.domain.models import Page
from hookline.domain.rollups import MINUTE_SECONDS
from hookline.domain.tasks import BackgroundTask, TaskKind
from hookline.instrumentation import FailureGroupOpened
from hookline.operations import applications, endpoints, tasks
from hookline.operations.audit import record
from hookline.operations.context import Operations
from hookline.operations.principal import Principal
from hookline.operations.tasks import TaskRequest
from hookline.storage.base import MAX_LIST_LIMIT, ListQuery

log = logging.getLogger("hookline.failure_groups")

LEASE = "failure-groups"
CURSOR = "failure-groups"
DEFAULT_INTERVAL_SECONDS = 60.0
LEASE_PASSES = 3
"""A lease lasts this many intervals: a holder that misses a pass or two keeps it."""
PAGE_ATTEMPTS = 1000
"""Failed attempts of one endpoint read at a time; the event loop runs between pages."""
CHUNK_ATTEMPTS = 20_000
"""Failed attempts held at once before they are gathered into sightings: the bound on a
pass's memory (a message is counted once per chunk it failed in)."""
QUIET_BATCH = 500
"""Quiet groups judged for an automatic resolve at a time (a page, with its reads)."""


@dataclass(frozen=True, slots=True)
class Pass:
    """What one pass did, for tests and logs."""

    start: datetime
    end: datetime
    attempts: int
    groups: int
    resolved: int


class FailureGrouper:
    """One process's grouping job; ``run`` passes every ``interval`` seconds."""

    def __init__(self, interval: float = DEFAULT_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self.holder = ids.new_id(ids.WORKER)

    async def scan(self, ops: Operations) -> Pass | None:
        """One pass at ``ops.clock()``; None when another process holds the lease, there
        is nothing new, or another pass counted the range first."""
        now = ops.clock()
        store = ops.store
        lease_until = now + timedelta(seconds=LEASE_PASSES * self.interval)
        if not await store.take_lease(LEASE, self.holder, now, lease_until):
            return None
        previous = await store.scan_cursor(CURSOR)
        span = rules.scan_range(previous, now)
        if span is None:
            return None
        start, end = span
        failed, sightings = await _sightings(ops, start, end)
        if not await store.advance_scan_cursor(CURSOR, previous, end):
            return None
        await store.add_failures(sightings)
        if sightings and ops.instrumentation.wants(FailureGroupOpened):
            await _announce_openings(ops, sightings)
        resolved = await self._resolve_quiet(ops, now)
        return Pass(start, end, failed, len(sightings), resolved)

    async def _resolve_quiet(self, ops: Operations, now: datetime) -> int:
        """Resolve the groups that went quiet while their endpoint delivered again, or
        whose endpoint was deleted: every quiet group, a page at a time, so the groups of
        endpoints that stay down never keep the others from being judged."""
        resolved = 0
        after: FailureGroup | None = None
        while True:
            quiet = await ops.store.quiet_failure_groups(
                rules.quiet_before(now), QUIET_BATCH, after
            )
            resolved += await self._resolve_page(ops, now, quiet)
            if len(quiet) < QUIET_BATCH:
                return resolved
            after = quiet[-1]

    async def _resolve_page(self, ops: Operations, now: datetime, quiet: list[FailureGroup]) -> int:
        store = ops.store
        if not quiet:
            return 0
        endpoint_ids = sorted({g.endpoint_id for g in quiet})
        since = rules.quiet_before(now)
        until = now + timedelta(seconds=MINUTE_SECONDS)
        totals = await store.rollup_totals(MINUTE_SECONDS, since, until, endpoint_ids)
        existing = await store.endpoint_states(endpoint_ids)
        resolved = 0
        for group in quiet:
            counts = totals.get(group.endpoint_id)
            successes = 0 if counts is None else counts.attempts - counts.failed
            exists = group.endpoint_id in existing
            if rules.resolves_on_its_own(group, successes, now, exists) and (
                await store.resolve_failure_group(
                    group.id, now, ResolvedBy.AUTOMATIC, group.last_seen_at
                )
            ):
                resolved += 1
        return resolved

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        """Pass every ``interval`` seconds until ``stop``; a failed pass is logged and tried
        again: grouping is for triage and never takes the worker down."""
        while not stop.is_set():
            try:
                await self.scan(ops)
            except Unavailable as exc:
                log.warning("failure grouping skipped: %s", exc)
            except Exception:
                log.exception("failure grouping failed; trying again in %.0f s", self.interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self.interval)


async def _announce_openings(ops: Operations, sightings: list[Sighting]) -> None:
    """Tell the instrumentation (log, operational webhook, metrics) of each group this pass
    opened or reopened: new failures worth a look, where an addition to an open group is
    not news. Read back by endpoint, whose groups are few (one per kind of failure)."""
    for endpoint_id in sorted({s.endpoint_id for s in sightings}):
        page = await ops.store.list_failure_groups(
            ListQuery(limit=MAX_LIST_LIMIT), GroupFilter(endpoint_id=endpoint_id)
        )
        for group in rules.opened_by(page.data, sightings):
            ops.instrumentation.emit(FailureGroupOpened(group))


async def _sightings(ops: Operations, start: datetime, end: datetime) -> tuple[int, list[Sighting]]:
    """The failed attempts minted in [``start``, ``end``), of the endpoints whose rollups
    counted a failure around then, gathered per key; and how many there were. At most
    ``CHUNK_ATTEMPTS`` attempts are held at once, so an endpoint failing thousands of times a
    second does not fill the memory: each chunk is gathered and merged."""
    after = ids.first_id_at(ids.ATTEMPT, _ms(start))
    before = ids.first_id_at(ids.ATTEMPT, _ms(end))
    sightings: list[Sighting] = []
    chunk: list[FailedAttempt] = []
    failed = 0
    for endpoint_id in await ops.store.endpoints_with_failures(rules.rollup_start(start), end):
        cursor = after
        while True:
            page = await ops.store.failed_attempts(endpoint_id, cursor, before, PAGE_ATTEMPTS)
            chunk += page
            failed += len(page)
            if len(chunk) >= CHUNK_ATTEMPTS:
                sightings, chunk = rules.merge(sightings, rules.gather(chunk)), []
            await asyncio.sleep(0)
            if len(page) < PAGE_ATTEMPTS:
                break
            cursor = page[-1].id
    return failed, rules.merge(sightings, rules.gather(chunk))


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


# -- what an operator does -------------------------------------------------------------------


async def list_all(
    ops: Operations, principal: Principal, query: ListQuery, filters: GroupFilter
) -> Page[FailureGroup]:
    """Every application's groups (admins only); an application filter is an id or uid,
    an endpoint filter then one of its endpoints."""
    principal.require_admin()
    if filters.app_id is not None:
        return await list_for_application(ops, principal, filters.app_id, query, filters)
    return await ops.store.list_failure_groups(query, filters)


async def list_for_application(
    ops: Operations, principal: Principal, app_key: str, query: ListQuery, filters: GroupFilter
) -> Page[FailureGroup]:
    """One application's groups, resolved with tenant isolation."""
    app = await applications.resolve(ops, principal, app_key)
    endpoint_id = None
    if filters.endpoint_id is not None:
        endpoint_id = (await endpoints.in_application(ops, app, filters.endpoint_id)).id
    scoped = GroupFilter(filters.status, app.id, endpoint_id)
    return await ops.store.list_failure_groups(query, scoped)


async def get(ops: Operations, principal: Principal, app_key: str, group_id: str) -> FailureGroup:
    """A group of the application; another application's is absent."""
    app = await applications.resolve(ops, principal, app_key)
    found = await ops.store.failure_group(group_id)
    if found is None or found.app_id != app.id:
        raise NotFound("Failure group not found")
    return found


async def acknowledge(
    ops: Operations, principal: Principal, app_key: str, group_id: str
) -> FailureGroup:
    """An operator saw it: it stays listed and keeps counting. Acknowledging it again
    changes nothing; a resolved group cannot be (409)."""
    group = await get(ops, principal, app_key, group_id)
    if group.status is GroupStatus.RESOLVED:
        raise Conflict(
            f"Failure group {group.id} is resolved; a new failure reopens it",
            code="failure_group_resolved",
        )
    if rules.acknowledged(group) and await ops.store.acknowledge_failure_group(
        group.id, ops.clock()
    ):
        await record(
            ops, principal, a.FAILURE_GROUP_ACKNOWLEDGED, app_id=group.app_id, target_id=group.id
        )
    return await get(ops, principal, app_key, group_id)


async def resolve(
    ops: Operations, principal: Principal, app_key: str, group_id: str
) -> FailureGroup:
    """Close it by hand; resolving it again changes nothing, and a new failure reopens it."""
    group = await get(ops, principal, app_key, group_id)
    if group.status is not GroupStatus.RESOLVED and await ops.store.resolve_failure_group(
        group.id, ops.clock(), ResolvedBy.OPERATOR
    ):
        await record(
            ops, principal, a.FAILURE_GROUP_RESOLVED, app_id=group.app_id, target_id=group.id
        )
    return await get(ops, principal, app_key, group_id)


def _replay_request(group: FailureGroup) -> TaskRequest:
    """A redrive of the endpoint's dead letters that failed for good since the group
    (re)opened and last got its status code (for no answer: no answer at all)."""
    status_code, code_class = rules.replay_codes(group)
    return TaskRequest(
        TaskKind.REDRIVE,
        endpoint=group.endpoint_id,
        status_code_class=code_class,
        status_code=status_code,
        failed_since=group.opened_at,
        cause=group.id,
    )


async def replay(
    ops: Operations, principal: Principal, app_key: str, group_id: str
) -> BackgroundTask:
    """Start a background task (a redrive, with its progress and cancel) that sends the
    group's failed deliveries again; audited as the task's start, naming the group."""
    group = await get(ops, principal, app_key, group_id)
    return await tasks.start(ops, principal, group.app_id, _replay_request(group))


async def replay_count(ops: Operations, principal: Principal, app_key: str, group_id: str) -> int:
    """Dry run: how many deliveries ``replay`` would send now, changing nothing."""
    group = await get(ops, principal, app_key, group_id)
    return await tasks.count(ops, principal, group.app_id, _replay_request(group))
