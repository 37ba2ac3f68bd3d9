"""``KeptReservation``: an idempotency key held only while its request runs.

A reservation is a short lease in the store (``IDEMPOTENCY_LEASE_SECONDS`` in
``storage/repository.py``): a request that outlives it renews it every
``IDEMPOTENCY_RENEW_SECONDS``, so a live owner keeps its key however long it takes, and a key
whose owner died (``kill -9`` mid-request) is free again within one lease. Most requests end
before the first renewal: they cost one timer, no task and no statement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from hookline.domain.errors import Unavailable

log = logging.getLogger("hookline.api")

IDEMPOTENCY_RENEW_SECONDS = 2.0
"""How often a running request renews its key: well inside the store's lease (10 s), so a
renewal that fails once (the database blinked) still leaves time for the next."""


class KeptReservation:
    """Renews a reservation with ``renew`` until ``release``; started on construction."""

    def __init__(self, renew: Callable[[], Awaitable[object]]) -> None:
        self._renew = renew
        self._task: asyncio.Task[None] | None = None
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(IDEMPOTENCY_RENEW_SECONDS, self._start)

    def _start(self) -> None:
        self._task = asyncio.ensure_future(self._keep())

    async def _keep(self) -> None:
        while True:
            try:
                await self._renew()
            except Unavailable as exc:
                log.warning("could not renew an idempotency reservation: %s", exc)
            await asyncio.sleep(IDEMPOTENCY_RENEW_SECONDS)

    async def release(self) -> None:
        """Stop renewing (the request finished, whatever its outcome)."""
        self._timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
