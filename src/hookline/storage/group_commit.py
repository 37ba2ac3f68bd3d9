"""Group commit: publishes that arrive while a commit runs share the next transaction.

A 202 may only follow the commit that holds the message, so every publish waits for a
commit; with one transaction per publish, the database's commit rate caps ingest. Here
the first publish starts a flush; everything that arrives while it runs waits for the next
one, which carries them all. Each caller still hears back only about its own request, and
only after the transaction that holds its rows has committed.

Both SQL backends use this; they differ only in how their batch writer writes one batch,
and both route it with ``route_batch``. A backend may also send attempt records through it
(``record``): on SQLite, where every transaction takes the one write lock and a commit, the
worker's records then ride in the publishes' commit.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hookline.domain.errors import Conflict
from hookline.domain.models import Endpoint, Message
from hookline.instrumentation import NO_INSTRUMENTATION, BatchCommitted, Instrumentation
from hookline.storage import rows
from hookline.storage.base import AttemptOutcome, Handoff, IdempotencyCompletion
from hookline.storage.handoff import DeliveryRows

Routed = list[list[str]]
"""Per message of a request, the ids of the endpoints it was routed to."""

WriteBatch = Callable[
    [Sequence["PendingPublish"], DeliveryRows, Sequence[AttemptOutcome]],
    Awaitable[list[Routed | Exception]],
]


@dataclass(slots=True)
class PendingPublish:
    """One caller's publish, waiting for the commit that will hold it."""

    messages: Sequence[Message]
    now_ms: int
    only_endpoint: str | None
    completion: IdempotencyCompletion | None
    done: asyncio.Future[Routed]


_Records = tuple[Sequence[AttemptOutcome], asyncio.Future[None]]
"""Attempt outcomes waiting for the next commit, and who waits for it."""


class GroupCommit:
    """Queues publishes and writes them in batches of at most ``max_batch``, one at a time."""

    def __init__(
        self,
        write: WriteBatch,
        max_batch: int,
        *,
        backend: str = "",
        instrumentation: Instrumentation = NO_INSTRUMENTATION,
        on_unsettled: Callable[[str, str], None] = lambda _worker_id, _lease_token: None,
    ) -> None:
        """``on_unsettled(worker_id, lease_token)`` hears of a hand-over whose commit failed:
        it may have committed all the same, leasing rows the worker was never given."""
        self._write = write
        self._on_unsettled = on_unsettled
        self._max_batch = max_batch
        self._backend = backend
        self._instrumentation = instrumentation
        self._commits_heard = instrumentation.wants(BatchCommitted)
        self._pending: list[PendingPublish] = []
        self._records: list[_Records] = []
        self._flusher: asyncio.Task[None] | None = None
        self.handoff: Handoff | None = None

    async def submit(
        self,
        messages: Sequence[Message],
        now_ms: int,
        only_endpoint: str | None,
        completion: IdempotencyCompletion | None,
    ) -> Routed:
        loop = asyncio.get_running_loop()
        request = PendingPublish(messages, now_ms, only_endpoint, completion, loop.create_future())
        self._pending.append(request)
        self._start(loop)
        return await request.done

    async def record(self, outcomes: Sequence[AttemptOutcome]) -> None:
        """Write attempt outcomes in the next commit; return once it has committed."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        self._records.append((outcomes, done))
        self._start(loop)
        await done

    def _start(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._flusher is None or self._flusher.done():
            # Not in the context of the request that happened to start it: the batch holds
            # many requests' publishes, and its lines are about none of them.
            self._flusher = loop.create_task(self._flush(), context=contextvars.Context())

    async def _flush(self) -> None:
        while self._pending or self._records:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            records, self._records = self._records, []
            await self._commit(batch, records)

    async def _commit(self, batch: list[PendingPublish], records: list[_Records]) -> None:
        """One transaction: ``batch`` and the attempt records, with what the local worker
        may take straight away; every caller hears about its own part once it committed."""
        outcomes = [outcome for group, _ in records for outcome in group]
        handoff = self.handoff if batch else None
        # Flushes run one at a time, so one offer may take all the room there is.
        offer = handoff.offer() if handoff is not None else None
        deliveries = DeliveryRows(offer)
        started = time.perf_counter() if self._commits_heard else 0.0
        try:
            routed = await self._write(batch, deliveries, outcomes)
        except BaseException as exc:
            if handoff is not None and offer is not None:
                handoff.accept(offer, [], ())
                if not isinstance(exc, Conflict):  # a conflict rolled everything back
                    self._on_unsettled(offer.worker_id, offer.lease_token)
            _fail(batch, records, exc)
            if not isinstance(exc, Exception):
                raise
            return
        if handoff is not None and offer is not None:
            handoff.accept(offer, deliveries.claimed, deliveries.left_for)
        if self._commits_heard:
            elapsed = time.perf_counter() - started
            self._instrumentation.emit(_committed(self._backend, batch, routed, outcomes, elapsed))
        _settle(batch, routed, records)


def _committed(
    backend: str,
    batch: Sequence[PendingPublish],
    routed: Sequence[Routed | Exception],
    outcomes: Sequence[AttemptOutcome],
    elapsed: float,
) -> BatchCommitted:
    messages = accepted = deliveries = 0
    sizes: list[int] = []
    for request, fanned in zip(batch, routed, strict=True):
        messages += len(request.messages)
        if isinstance(fanned, Exception):
            continue
        accepted += len(request.messages)
        deliveries += sum(map(len, fanned))
        sizes += [0 if msg.payload is None else len(msg.payload) for msg in request.messages]
    return BatchCommitted(
        backend, len(batch), messages, len(outcomes), elapsed, accepted, deliveries, tuple(sizes)
    )


def _fail(batch: Sequence[PendingPublish], records: Sequence[_Records], exc: BaseException) -> None:
    for request in batch:
        if not request.done.done():
            request.done.set_exception(exc)
    for _, done in records:
        if not done.done():
            done.set_exception(exc)


def _settle(
    batch: Sequence[PendingPublish],
    routed: Sequence[Routed | Exception],
    records: Sequence[_Records],
) -> None:
    for _, done in records:
        if not done.done():
            done.set_result(None)
    for request, outcome in zip(batch, routed, strict=True):
        if request.done.done():
            continue
        if isinstance(outcome, Exception):
            request.done.set_exception(outcome)
        else:
            request.done.set_result(outcome)


def route_batch(
    batch: Sequence[PendingPublish],
    by_app: Mapping[str, Sequence[Endpoint]],
    deliveries: DeliveryRows,
) -> tuple[list[Routed], list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The routing loop of a publish, for every batch writer: each message goes to the
    enabled endpoints of its application (``by_app``) that accept it, and each of its
    deliveries is written pending or leased to the local worker (``DeliveryRows``).

    Returns, per request, the endpoint ids of each message, and the parameters of the
    delivery rows to write pending, leased, and pending in an ordered endpoint's sequence."""
    routed_all: list[Routed] = []
    pending_all: list[dict[str, Any]] = []
    leased_all: list[dict[str, Any]] = []
    ordered_all: list[dict[str, Any]] = []
    for request in batch:
        routed: Routed = []
        for msg in request.messages:
            targets = rows.route(by_app[msg.app_id], msg, request.only_endpoint)
            pending, leased, ordered = deliveries.split(msg, targets, request.now_ms)
            pending_all += pending
            leased_all += leased
            if ordered:
                ordered_all += ordered
            routed.append([ep.id for ep in targets])
        routed_all.append(routed)
    return routed_all, pending_all, leased_all, ordered_all
