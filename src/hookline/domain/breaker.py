"""Circuit breaker per endpoint: stop spending attempts on an endpoint that is down.

Without it, an endpoint that refuses connections costs an attempt (a request, an attempt
row, a retry update) for every message and every retry, and that work is taken from the
healthy endpoints. After ``threshold`` failures in a row the breaker opens: the worker
neither hands the endpoint's deliveries over nor claims them, and ones already leased are
put back, unattempted, until the cooldown ends. Then one probe goes through (half-open):
success closes the breaker, failure opens it again for twice as long, up to a ceiling.

Deliveries held back this way keep their attempt count: the retry schedule measures the
endpoint's failures, not time spent waiting behind an open breaker.

A breaker's state while it is open (``CircuitState``) is shared by every worker through the
store: one worker's breaker opening holds the endpoint's deliveries on all of them, each of
which adopts the state it learns (``adopt``) and sends its own probe once the cooldown ends.

Failures are what says the endpoint itself is unwell: no response (status 0), a 5xx, or a
429. Any other answer, 4xx included, proves it is up and resets the count.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_THRESHOLD = 5
DEFAULT_COOLDOWN_SECONDS = 5.0
DEFAULT_MAX_COOLDOWN_SECONDS = 300.0


def is_endpoint_failure(status_code: int) -> bool:
    return status_code == 0 or status_code == 429 or status_code >= 500


@dataclass(frozen=True, slots=True)
class CircuitState:
    """An open breaker as other workers learn it: times are seconds (Unix time)."""

    failures: int
    open_until: float
    cooldown: float


@dataclass
class Breaker:
    """One endpoint's breaker; times are seconds (Unix time) from the caller's clock."""

    threshold: int = DEFAULT_THRESHOLD
    base_cooldown: float = DEFAULT_COOLDOWN_SECONDS
    max_cooldown: float = DEFAULT_MAX_COOLDOWN_SECONDS
    failures: int = 0
    cooldown: float = 0.0
    open_until: float | None = None
    probing: bool = False

    @property
    def closed(self) -> bool:
        return self.open_until is None

    @property
    def state(self) -> CircuitState | None:
        """What other workers need to hold the endpoint too; None while closed."""
        if self.open_until is None:
            return None
        return CircuitState(self.failures, self.open_until, self.cooldown)

    def adopt(self, state: CircuitState) -> None:
        """Take on a state another worker's breaker reached, unless this one already holds
        the endpoint at least as long (the later opening is the newer news)."""
        if self.open_until is not None and self.open_until >= state.open_until:
            return
        self.failures = max(self.failures, state.failures)
        self.cooldown = state.cooldown
        self.open_until = state.open_until
        self.probing = False

    def blocks(self, now: float) -> bool:
        """True while no attempt may start: open, or half-open with its probe under way."""
        if self.open_until is None:
            return False
        return now < self.open_until or self.probing

    def admit(self, now: float) -> bool:
        """May an attempt start now? In half-open state only the first caller (the probe)."""
        if self.open_until is None:
            return True
        if now < self.open_until or self.probing:
            return False
        self.probing = True
        return True

    def hold_until(self, now: float) -> float:
        """When a delivery held back now is due again: the end of the cooldown, or, while a
        probe is under way, one base cooldown later."""
        if self.open_until is not None and now < self.open_until:
            return self.open_until
        return now + self.base_cooldown

    def record(self, status_code: int, now: float) -> None:
        """Count an attempt's answer; opens, re-opens or closes the breaker."""
        if not is_endpoint_failure(status_code):
            self.failures = 0
            self.cooldown = 0.0
            self.open_until = None
            self.probing = False
            return
        self.failures += 1
        if self.probing or (self.open_until is None and self.failures >= self.threshold):
            self.cooldown = min(
                self.max_cooldown, self.cooldown * 2 if self.cooldown else self.base_cooldown
            )
            self.open_until = now + self.cooldown
            self.probing = False
