"""``Gate``: at most N attempts at once to one endpoint, first come first served.

``asyncio.Semaphore`` would do, but entering one costs a coroutine step and a scan of its
waiters even when there is room, and a worker enters one per delivery. Here entering with
room is a counter increment; only a caller that has to wait gets a future.
"""

from __future__ import annotations

import asyncio
from collections import deque


class Gate:
    __slots__ = ("_holders", "_limit", "_waiters")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._holders = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def enter(self) -> None:
        if self._holders < self._limit and not self._waiters:
            self._holders += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave()  # the place was handed to us as we were cancelled: pass it on
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def leave(self) -> None:
        """Hand the place to the longest waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._holders -= 1
