"""``FailingTracker``: which endpoints this worker knows as failing or healthy, in memory.

Auto-disable needs, for every endpoint, since when every attempt has failed. Writing that
on every attempt would cost a write per attempt; instead the worker writes only when what
it knows changes: the first failure after a success starts a failing period, the first
success ends it (``Recorder`` batches the writes). What it knows is refreshed once per
``REFRESH_SECONDS`` of continued attempts, so that when several workers see different
results for one endpoint (one fails, another succeeds) the store follows each within that
time: a single success per period keeps an endpoint from being disabled.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hookline.domain.operational import is_attempt_failure

REFRESH_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class FailingChange:
    """An endpoint started failing at ``at`` (``failing``) or succeeded again."""

    endpoint_id: str
    app_id: str
    failing: bool
    at: datetime


class FailingTracker:
    __slots__ = ("_clock", "_known", "_monotonic")

    def __init__(
        self,
        clock: Callable[[], datetime],
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._monotonic = monotonic
        self._known: dict[str, tuple[bool, float]] = {}

    def record(self, endpoint_id: str, app_id: str, status_code: int) -> FailingChange | None:
        """The change to write after an attempt that got ``status_code``, if any."""
        failing = is_attempt_failure(status_code)
        now = self._monotonic()
        known = self._known.get(endpoint_id)
        if known is not None and known[0] is failing and now - known[1] < REFRESH_SECONDS:
            return None
        self._known[endpoint_id] = (failing, now)
        return FailingChange(endpoint_id, app_id, failing, self._clock())
