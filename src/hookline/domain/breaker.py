"""Circuit breaker per endpoint: stop spending attempts on an endpoint that is down.

Without it, an endpoint that refuses connections costs an attempt (a request, an attempt
row, a retry update) for every message and every retry, and that work is taken from the
healthy endpoints. A breaker opens on either of two rules (``BreakerSettings``):

- ``threshold`` failures in a row (an endpoint that is down), or
- a failure ratio of at least ``failure_ratio`` over the last ``window_seconds``, once the
  window holds ``min_attempts`` attempts (an endpoint that is down but for a few lucky
  answers, which would keep resetting a count of failures in a row).

While open, the worker neither hands the endpoint's deliveries over nor claims them, and
ones already leased are put back, unattempted, until the cooldown ends. Then the circuit is
half-open: exactly one probe goes through, across all workers (the worker that wins the
store's compare-and-set, ``Store.claim_probe``, sends it; the others hold until its answer
is known or its probe lease runs out). Success closes the circuit for everyone; failure
opens it again for twice as long, up to a ceiling.

Deliveries held back this way keep their attempt count: the retry schedule measures the
endpoint's failures, not time spent waiting behind an open breaker.

Failures are what says the endpoint itself is unwell: no response (status 0), a 5xx, or a
429. Any other answer, 4xx included, proves it is up and resets the count. A 429 or 503
that carries ``Retry-After`` is the endpoint asking to slow down, not failing: it neither
counts as a failure nor resets the count, and opens the circuit only when it *persists*:
nothing but such answers for at least ``throttle_seconds`` and at least ``threshold`` of
them in a row.

Counts live in each worker's memory (no store write per attempt); the state a transition
reaches (``CircuitState``) is written to the store, so every worker holds what one opened.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from hookline.domain.policy import BreakerPolicy

DEFAULT_THRESHOLD = 20
DEFAULT_COOLDOWN_SECONDS = 5.0
DEFAULT_MAX_COOLDOWN_SECONDS = 300.0
DEFAULT_FAILURE_RATIO = 0.9
DEFAULT_WINDOW_SECONDS = 60.0
DEFAULT_MIN_ATTEMPTS = 20
DEFAULT_THROTTLE_SECONDS = 60.0
WINDOW_BUCKETS = 10
"""The window is kept as this many buckets of counts: memory is fixed however many
attempts it holds, and the window slides by a tenth of its length at a time."""


def is_endpoint_failure(status_code: int) -> bool:
    return status_code == 0 or status_code == 429 or status_code >= 500


def is_throttled(status_code: int, retry_after: str | None) -> bool:
    """A 429 or 503 that says when to come back: the endpoint is up and asks for less."""
    return retry_after is not None and status_code in (429, 503)


class Reason(StrEnum):
    """Which rule opened a circuit."""

    CONSECUTIVE_FAILURES = "consecutiveFailures"
    FAILURE_RATIO = "failureRatio"
    THROTTLED = "throttled"


class Phase(StrEnum):
    """A circuit's state as the API shows it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "halfOpen"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    """One endpoint's breaker rules: the server's, with the endpoint's policy over them."""

    threshold: int = DEFAULT_THRESHOLD
    failure_ratio: float = DEFAULT_FAILURE_RATIO
    window_seconds: float = DEFAULT_WINDOW_SECONDS
    min_attempts: int = DEFAULT_MIN_ATTEMPTS
    cooldown: float = DEFAULT_COOLDOWN_SECONDS
    max_cooldown: float = DEFAULT_MAX_COOLDOWN_SECONDS
    throttle_seconds: float = DEFAULT_THROTTLE_SECONDS

    def over(self, policy: BreakerPolicy | None) -> BreakerSettings:
        """These settings with every field ``policy`` sets taken from it."""
        if policy is None:
            return self
        return replace(
            self,
            threshold=policy.threshold or self.threshold,
            failure_ratio=policy.failure_ratio or self.failure_ratio,
            window_seconds=policy.window_seconds or self.window_seconds,
            min_attempts=policy.min_attempts or self.min_attempts,
            cooldown=policy.cooldown_seconds or self.cooldown,
        )


@dataclass(frozen=True, slots=True)
class CircuitState:
    """An open (or half-open) circuit as the store keeps it; times are Unix seconds.

    ``failures`` and ``failure_ratio`` are the counts of the worker that opened it, at the
    opening: what the API shows as the reason it is open.
    """

    failures: int
    open_until: float
    cooldown: float
    opened_at: float = 0.0
    """When this episode began (the first opening; re-openings keep it)."""
    failure_ratio: float | None = None
    reason: Reason = Reason.CONSECUTIVE_FAILURES
    probe_until: float | None = None
    """Set while a worker's probe is under way: the end of its probe lease."""

    @property
    def hold_until(self) -> float:
        """Until when no worker may send: the cooldown's end, or the probe lease's."""
        if self.probe_until is None:
            return self.open_until
        return max(self.open_until, self.probe_until)

    def phase(self, now: float) -> Phase:
        return Phase.OPEN if now < self.open_until else Phase.HALF_OPEN


class ProbeGrant(StrEnum):
    """What a worker's bid for the half-open probe (``Store.claim_probe``) got."""

    GRANTED = "granted"
    """This worker sends the one probe."""
    TAKEN = "taken"
    """Another worker's probe is under way, or the circuit was opened again."""
    CLOSED = "closed"
    """The circuit is gone: another worker's probe succeeded."""


@dataclass
class Window:
    """Attempts and failures over the last ``seconds``, in ``WINDOW_BUCKETS`` buckets."""

    seconds: float
    attempts: list[int] = field(default_factory=lambda: [0] * WINDOW_BUCKETS)
    failures: list[int] = field(default_factory=lambda: [0] * WINDOW_BUCKETS)
    tick: int = -1
    """The bucket number (time / bucket length) the newest bucket counts."""

    def add(self, now: float, failed: bool) -> None:
        slot = self._advance(now)
        self.attempts[slot] += 1
        if failed:
            self.failures[slot] += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(attempts, failures) in the window that ends at ``now``."""
        self._advance(now)
        return sum(self.attempts), sum(self.failures)

    @property
    def empty_of_failures(self) -> bool:
        return not any(self.failures)

    def _advance(self, now: float) -> int:
        tick = int(now / (self.seconds / WINDOW_BUCKETS))
        if self.tick < 0 or tick - self.tick >= WINDOW_BUCKETS:
            self.attempts = [0] * WINDOW_BUCKETS
            self.failures = [0] * WINDOW_BUCKETS
        else:
            for stale in range(self.tick + 1, tick + 1):
                self.attempts[stale % WINDOW_BUCKETS] = 0
                self.failures[stale % WINDOW_BUCKETS] = 0
        self.tick = max(self.tick, tick)
        return self.tick % WINDOW_BUCKETS


@dataclass
class Breaker:
    """One endpoint's breaker on one worker; times are Unix seconds from the caller's clock."""

    settings: BreakerSettings = field(default_factory=BreakerSettings)
    failures: int = 0
    """Failures in a row."""
    window: Window | None = None
    throttled: int = 0
    throttled_since: float | None = None
    state: CircuitState | None = None
    """Set while open or half-open: what every worker holds the endpoint by."""
    probing: bool = False
    """This worker sends the probe (it won the bid, or is bidding now)."""

    def __post_init__(self) -> None:
        if self.window is None:
            self.window = Window(self.settings.window_seconds)

    @property
    def closed(self) -> bool:
        return self.state is None

    def reconfigure(self, settings: BreakerSettings) -> None:
        """The endpoint's policy changed: new rules from the next answer on."""
        if settings.window_seconds != self.settings.window_seconds:
            self.window = Window(settings.window_seconds)
        self.settings = settings

    @property
    def idle(self) -> bool:
        """Closed with nothing counted that could open it: the worker may forget it."""
        assert self.window is not None
        return (
            self.state is None
            and self.failures == 0
            and self.throttled == 0
            and self.window.empty_of_failures
        )

    def blocks(self, now: float) -> bool:
        """True while no attempt may start here: open, or half-open with a probe out."""
        if self.state is None:
            return False
        return now < self.state.hold_until or self.probing

    def wants_probe(self, now: float) -> bool:
        """The cooldown (and any probe lease) has ended and nobody here is probing: this
        worker should bid for the probe. Marks the bid as under way."""
        if self.state is None or self.probing or now < self.state.hold_until:
            return False
        self.probing = True
        return True

    def hold_until(self, now: float) -> float:
        """When a delivery held back now is due again: the end of the cooldown, or, while a
        probe is out (here or on another worker), one cooldown later, so that what was held
        flows again soon after the probe closes the circuit."""
        if self.state is not None and now < self.state.open_until:
            return self.state.open_until
        return now + self.settings.cooldown

    def probe_granted(self, grant: ProbeGrant, state: CircuitState | None) -> None:
        """The answer to this worker's bid: ``state`` is the store's circuit after it."""
        if grant is ProbeGrant.GRANTED:
            return
        self.probing = False
        if grant is ProbeGrant.CLOSED:
            self._close()
        elif state is not None:
            self.state = state

    def probe_failed_to_bid(self) -> None:
        """The store could not be asked: bid again later."""
        self.probing = False

    def adopt(self, state: CircuitState | None) -> bool:
        """Take on the store's view of this circuit (read on a heartbeat); True if that
        closed a circuit here (another worker's probe succeeded)."""
        if self.probing:
            return False
        if state is None:
            if self.state is None:
                return False
            self._close()
            return True
        if self.state is None or state.hold_until >= self.state.hold_until:
            self.failures = max(self.failures, state.failures)
            self.state = state
        return False

    def record(self, status_code: int, retry_after: str | None, now: float) -> CircuitState | None:
        """Count an attempt's answer. Returns the new state when it opened or re-opened
        the circuit; ``closed`` says whether it closed it."""
        assert self.window is not None
        if is_throttled(status_code, retry_after):
            return self._throttled(now)
        self.throttled, self.throttled_since = 0, None
        failed = is_endpoint_failure(status_code)
        self.window.add(now, failed)
        if not failed:
            self.failures = 0
            self._close()
            return None
        self.failures += 1
        if self.probing:
            return self._open(now, Reason.CONSECUTIVE_FAILURES)
        if self.state is not None:
            return None
        if self.failures >= self.settings.threshold:
            return self._open(now, Reason.CONSECUTIVE_FAILURES)
        attempts, failures = self.window.counts(now)
        if attempts >= self.settings.min_attempts and (
            failures >= self.settings.failure_ratio * attempts
        ):
            return self._open(now, Reason.FAILURE_RATIO)
        return None

    def ratio(self, now: float) -> float | None:
        assert self.window is not None
        attempts, failures = self.window.counts(now)
        return failures / attempts if attempts else None

    def _throttled(self, now: float) -> CircuitState | None:
        """A slow-down answer: opens only when nothing else has come for long enough."""
        if self.probing:
            return self._open(now, Reason.THROTTLED)
        self.throttled += 1
        if self.throttled_since is None:
            self.throttled_since = now
        persists = (
            self.throttled >= self.settings.threshold
            and now - self.throttled_since >= self.settings.throttle_seconds
        )
        if self.state is None and persists:
            return self._open(now, Reason.THROTTLED)
        return None

    def _open(self, now: float, reason: Reason) -> CircuitState:
        previous = self.state
        cooldown = self.settings.cooldown
        if previous is not None:
            cooldown = min(self.settings.max_cooldown, previous.cooldown * 2)
        self.state = CircuitState(
            failures=self.failures,
            open_until=now + cooldown,
            cooldown=cooldown,
            opened_at=previous.opened_at if previous is not None else now,
            failure_ratio=self.ratio(now),
            reason=reason if previous is None else previous.reason,
        )
        self.probing = False
        return self.state

    def _close(self) -> None:
        self.state = None
        self.probing = False
        self.throttled, self.throttled_since = 0, None


@dataclass(frozen=True, slots=True)
class CircuitView:
    """What the API shows of an endpoint's circuit: enough to see why its deliveries wait.

    Counts are those at the last opening (a closed circuit's live counts stay in each
    worker's memory: writing them would cost a store write per attempt).
    """

    phase: Phase = Phase.CLOSED
    consecutive_failures: int | None = None
    failure_ratio: float | None = None
    reason: Reason | None = None
    opened_at: float | None = None
    next_probe_at: float | None = None
    """When the probe may go (the cooldown's end), or, with a probe out, its lease's end."""
    probing: bool = False
    """A worker's probe is under way now."""


CLOSED_VIEW = CircuitView()


def view(state: CircuitState | None, now: float) -> CircuitView:
    """The API's view of the store's circuit at ``now``."""
    if state is None:
        return CLOSED_VIEW
    probing = state.probe_until is not None and now < state.probe_until
    return CircuitView(
        phase=state.phase(now),
        consecutive_failures=state.failures,
        failure_ratio=state.failure_ratio,
        reason=state.reason,
        opened_at=state.opened_at,
        next_probe_at=state.hold_until,
        probing=probing,
    )
