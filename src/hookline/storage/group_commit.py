"""Group commit: publishes that arrive while a commit runs share the next transaction.

A 202 may only follow the commit that holds the message, so every publish waits for a
commit; with one transaction per publish, the database's commit rate caps ingest. Here
the first publish starts a flush; everything that arrives while it runs waits for the next
one, which carries them all. Each caller still hears back only about its own request, and
only after the transaction that holds its rows has committed.

Both SQL backends use this; they differ only in how they write one batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from hookline.domain.models import Message
from hookline.storage.base import Handoff, IdempotencyCompletion
from hookline.storage.handoff import DeliveryRows

Routed = list[list[str]]
"""Per message of a request, the ids of the endpoints it was routed to."""

WriteBatch = Callable[
    [Sequence["PendingPublish"], DeliveryRows], Awaitable[list[Routed | Exception]]
]


@dataclass(slots=True)
class PendingPublish:
    """One caller's publish, waiting for the commit that will hold it."""

    messages: Sequence[Message]
    now_ms: int
    only_endpoint: str | None
    completion: IdempotencyCompletion | None
    done: asyncio.Future[Routed]


class GroupCommit:
    """Queues publishes and writes them in batches of at most ``max_batch``, one at a time."""

    def __init__(self, write: WriteBatch, max_batch: int) -> None:
        self._write = write
        self._max_batch = max_batch
        self._pending: list[PendingPublish] = []
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
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush())
        return await request.done

    async def _flush(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            handoff = self.handoff
            # Flushes run one at a time, so one offer may take all the room there is.
            offer = handoff.offer() if handoff is not None else None
            deliveries = DeliveryRows(offer)
            try:
                outcomes = await self._write(batch, deliveries)
            except BaseException as exc:
                if handoff is not None and offer is not None:
                    handoff.accept(offer, [], ())
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            if handoff is not None and offer is not None:
                handoff.accept(offer, deliveries.claimed, deliveries.left_for)
            for request, outcome in zip(batch, outcomes, strict=True):
                if request.done.done():
                    continue
                if isinstance(outcome, Exception):
                    request.done.set_exception(outcome)
                else:
                    request.done.set_result(outcome)
