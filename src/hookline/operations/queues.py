"""What the in-process queues of the operations layer share: the operational-webhook
publisher and the recorder of the worker's disables each drain a queue until told to stop."""

from __future__ import annotations

import asyncio


async def queued_or_stopped(queued: asyncio.Event, stop: asyncio.Event) -> None:
    """Return once something is queued or ``stop`` is set, whichever comes first; neither
    waiter outlives the call."""
    waiter = asyncio.create_task(queued.wait())
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        stopper.cancel()
