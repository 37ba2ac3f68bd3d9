"""``ApplicationLabels``: which application ids the names in HOOKLINE_METRICS_APPLICATIONS
stand for.

An operator names applications by uid (their own name for a customer) or by id; the metrics
hook hears attempts by id and cannot read the store. So this looks the names up in the
background, at start and then every minute (every few seconds while a name is unknown): an
application created after start, or deleted and created again under its uid, gets its series
without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from hookline.domain.errors import Unavailable
from hookline.domain.operational import OPERATIONAL_APP_ID
from hookline.instrumentation import MetricsHook

if TYPE_CHECKING:
    from hookline.operations.context import Operations

log = logging.getLogger("hookline.metrics")

RESOLVED_INTERVAL_SECONDS = 60.0
UNRESOLVED_INTERVAL_SECONDS = 5.0
"""A name not found yet is looked up again soon: it is likely an application about to be
created, and its first attempts should be counted apart."""


class ApplicationLabels:
    """Tells ``hook`` the application id behind each of its ``applications`` names."""

    def __init__(self, hook: MetricsHook) -> None:
        self._hook = hook

    async def refresh(self, ops: Operations) -> int:
        """Look every name up now; how many name no application."""
        found: dict[str, str] = {}
        missing = 0
        for name in self._hook.applications:
            app = await ops.store.get_application(name)
            if app is None or app.id == OPERATIONAL_APP_ID:
                missing += 1
            else:
                found.setdefault(app.id, name)
        self._hook.label_applications(found)
        return missing

    async def run(self, ops: Operations, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                missing = await self.refresh(ops)
            except Unavailable as exc:
                log.warning("metrics: cannot look the applications up now: %s", exc)
                missing = len(self._hook.applications)
            interval = UNRESOLVED_INTERVAL_SECONDS if missing else RESOLVED_INTERVAL_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
