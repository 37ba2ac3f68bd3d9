"""What every operation works with, built once per process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hookline.domain.clock import utcnow
from hookline.domain.operational import DEFAULT_DISABLE_AFTER
from hookline.domain.ssrf import ANY_PORT, PortPolicy
from hookline.instrumentation import NO_INSTRUMENTATION, Instrumentation, MessageAccepted, Tracing
from hookline.operations.backlog import DEFAULT_INTERVAL_SECONDS, BacklogMonitor
from hookline.operations.cache import ApplicationCache
from hookline.operations.token_cache import TokenCache
from hookline.storage.base import Store

DEFAULT_BASE_URL = "http://127.0.0.1:8071"
DEFAULT_MAX_ENDPOINTS_PER_APP = 100
DEFAULT_STALL_TIMEOUT = timedelta(seconds=20)


def _nobody_listens() -> None:
    """Without a local worker (``serve --no-worker``, the CLI) queued work waits for a poll."""


def _no_local_worker(_endpoint_id: str, _version: int, _disabled: bool) -> None:
    """Without a local worker, workers elsewhere learn of a disable through the store."""


def _nothing_due(when: datetime) -> None:
    """Without a local worker, scheduled deliveries are claimed by a worker's poll."""


@dataclass
class Operations:
    """The store, the clock and the process-wide pieces the operations share."""

    store: Store
    clock: Callable[[], datetime] = utcnow
    base_url: str = DEFAULT_BASE_URL
    """Where this deployment is reached from outside; portal links start with it."""
    app_cache: ApplicationCache = field(default_factory=ApplicationCache)
    token_cache: TokenCache = field(default_factory=TokenCache)
    """The token hash key and recently looked-up tokens (``operations.token_cache``)."""
    work_queued: Callable[[], None] = _nobody_listens
    """Wakes the local worker after an operation queued deliveries outside a publish
    (resend, recover); publishes reach it through the store's handoff instead."""
    endpoint_changed: Callable[[str, int, bool], None] = _no_local_worker
    """Tells the local worker, before the operation answers, that an endpoint was disabled
    or enabled again ``(endpoint_id, version, disabled)``, so that from the answer on it
    starts no attempt to a disabled endpoint."""
    task_queued: Callable[[], None] = _nobody_listens
    """Wakes this process's background-task runner after a task was created; without one,
    another process's runner finds the task at its next poll."""
    work_due: Callable[[datetime], None] = _nothing_due
    """Tells the local worker when deliveries a publish scheduled (``deliverAt``) fall due,
    so it wakes for them instead of at its next poll."""
    instrumentation: Instrumentation = NO_INSTRUMENTATION
    """Hears accepted messages and endpoints created, changed, enabled, disabled, deleted."""
    tracing: Tracing | None = None
    """Records the API's request and publish spans (``HOOKLINE_TRACING``); None when off."""
    disable_after: timedelta = DEFAULT_DISABLE_AFTER
    """The auto-disable period: an endpoint failing this long is disabled."""
    endpoint_https_only: bool = False
    """``HOOKLINE_ENDPOINT_HTTPS_ONLY``: endpoint URLs must be https:// (else a 422)."""
    ports: PortPolicy = ANY_PORT
    """The destination ports endpoint URLs may name (``HOOKLINE_OUTBOUND_*_PORTS``)."""
    max_endpoints_per_app: int | None = DEFAULT_MAX_ENDPOINTS_PER_APP
    """``HOOKLINE_MAX_ENDPOINTS_PER_APP``: creating one more is refused; None for no cap."""
    stall_timeout: timedelta = DEFAULT_STALL_TIMEOUT
    """``HOOKLINE_STALL_TIMEOUT``: a worker silent this long is presumed dead; readiness
    counts the workers heard from within it."""
    backlog: BacklogMonitor = field(
        default_factory=lambda: BacklogMonitor(DEFAULT_INTERVAL_SECONDS)
    )
    """This process's samples of the backlog (``operations/backlog.py``); the server
    replaces it with one at ``HOOKLINE_BACKLOG_SAMPLE_INTERVAL`` and runs it."""
    accepted_heard: bool = field(init=False)
    """Whether anyone listens for ``MessageAccepted``: asked once, read on every publish."""

    def __post_init__(self) -> None:
        self.accepted_heard = self.instrumentation.wants(MessageAccepted)
