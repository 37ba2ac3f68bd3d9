"""Delivery policy an endpoint or an application may set, over the server's defaults.

Svix's wire format has no place for these settings, so they travel as one documented
hookline field, ``policy``, on endpoints and applications (docs/delivery.md), and are stored
as one JSON column each. A field left unset (None) means "inherit": an endpoint's setting
wins over its application's, which wins over the server's (``HOOKLINE_*``). Keeping every
policy in one value means a new setting is a field here, not a migration, a column in
every query and a parameter in every constructor.

The JSON shape (``to_json`` / ``from_json``) is the stored one and the wire one, in
camelCase, so that what the API shows is what is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

MAX_RETRY_DELAYS = 20
"""Attempts one schedule may hold; Svix's own schedule has 7."""
MAX_DELAY_SECONDS = 7 * 24 * 3600.0


class PolicyError(ValueError):
    """A policy value hookline cannot use; the message names the field."""


class OnExhausted(StrEnum):
    """What an ordered endpoint does when a delivery exhausts its retries."""

    SKIP = "skip"
    """Count it failed (a dead letter) and send the next."""
    HOLD = "hold"
    """Stop the line until someone resends or recovers the failed delivery."""


def _seconds(value: Any, name: str, *, allow_zero: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyError(f"{name} must be a number of seconds")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        raise PolicyError(f"{name} must be a finite number of seconds greater than 0")
    if seconds > MAX_DELAY_SECONDS:
        raise PolicyError(f"{name} must be at most {int(MAX_DELAY_SECONDS)} seconds (7 days)")
    return seconds


def _optional_seconds(data: dict[str, Any], key: str, name: str) -> float | None:
    value = data.get(key)
    return None if value is None else _seconds(value, name, allow_zero=False)


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PolicyError(f"{name} must be an object")
    return value


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v is not None}


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed delivery is tried again, and how long it may keep trying."""

    schedule: tuple[float, ...] | None = None
    """Seconds between attempts (as ``HOOKLINE_RETRY_SCHEDULE``); ``()`` means no retries."""
    max_age_seconds: float | None = None
    """A delivery older than this (since its message was created) is not tried again."""

    def to_json(self) -> dict[str, Any]:
        schedule = None if self.schedule is None else list(self.schedule)
        return _drop_none({"schedule": schedule, "maxAgeSeconds": self.max_age_seconds})

    @classmethod
    def from_json(cls, value: Any) -> RetryPolicy:
        data = _object(value, "policy.retry")
        schedule = data.get("schedule")
        delays: tuple[float, ...] | None = None
        if schedule is not None:
            if not isinstance(schedule, list):
                raise PolicyError("policy.retry.schedule must be a list of seconds")
            if len(schedule) > MAX_RETRY_DELAYS:
                raise PolicyError(
                    f"policy.retry.schedule may hold at most {MAX_RETRY_DELAYS} delays"
                )
            delays = tuple(_seconds(v, "policy.retry.schedule[]") for v in schedule)
        max_age = _optional_seconds(data, "maxAgeSeconds", "policy.retry.maxAgeSeconds")
        return cls(delays, max_age)

    def over(self, base: RetryPolicy | None) -> RetryPolicy:
        """This policy's fields, and ``base``'s where this one leaves them unset."""
        if base is None:
            return self
        return RetryPolicy(
            self.schedule if self.schedule is not None else base.schedule,
            self.max_age_seconds if self.max_age_seconds is not None else base.max_age_seconds,
        )


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """An endpoint's own circuit-breaker settings; unset ones come from the server's."""

    threshold: int | None = None
    """Consecutive failures that open the circuit."""
    failure_ratio: float | None = None
    """Share of failed attempts in the window that opens the circuit (0 < r ≤ 1)."""
    window_seconds: float | None = None
    min_attempts: int | None = None
    """Attempts the window must hold before the ratio is judged."""
    cooldown_seconds: float | None = None

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {
                "threshold": self.threshold,
                "failureRatio": self.failure_ratio,
                "windowSeconds": self.window_seconds,
                "minAttempts": self.min_attempts,
                "cooldownSeconds": self.cooldown_seconds,
            }
        )

    @classmethod
    def from_json(cls, value: Any) -> BreakerPolicy:
        data = _object(value, "policy.breaker")
        ratio = data.get("failureRatio")
        if ratio is not None:
            if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
                raise PolicyError("policy.breaker.failureRatio must be a number in (0, 1]")
            ratio = float(ratio)
        return cls(
            threshold=_count(data.get("threshold"), "policy.breaker.threshold"),
            failure_ratio=ratio,
            window_seconds=_optional_seconds(data, "windowSeconds", "policy.breaker.windowSeconds"),
            min_attempts=_count(data.get("minAttempts"), "policy.breaker.minAttempts"),
            cooldown_seconds=_optional_seconds(
                data, "cooldownSeconds", "policy.breaker.cooldownSeconds"
            ),
        )


def _count(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1_000_000:
        raise PolicyError(f"{name} must be a whole number from 1 to 1000000")
    return value


@dataclass(frozen=True, slots=True)
class OrderingPolicy:
    """Present on an endpoint that receives its messages strictly in creation order."""

    on_exhausted: OnExhausted = OnExhausted.SKIP

    def to_json(self) -> dict[str, Any]:
        return {"onExhausted": self.on_exhausted.value}

    @classmethod
    def from_json(cls, value: Any) -> OrderingPolicy:
        data = _object(value, "policy.ordering")
        raw = data.get("onExhausted", OnExhausted.SKIP.value)
        try:
            return cls(OnExhausted(raw))
        except ValueError:
            raise PolicyError("policy.ordering.onExhausted must be skip or hold") from None


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    """What happens when an endpoint that was failing answers again.

    ``auto``: the deliveries that failed for good while it was failing are sent again by a
    recover task, as if its owner had asked for one (Svix's ``recover``); deliveries still
    retrying need no help."""

    auto: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"auto": self.auto}

    @classmethod
    def from_json(cls, value: Any) -> RecoveryPolicy:
        data = _object(value, "policy.recovery")
        unknown = set(data) - {"auto"}
        if unknown:
            raise PolicyError(f"policy.recovery has no field {sorted(unknown)[0]!r}")
        auto = data.get("auto", False)
        if not isinstance(auto, bool):
            raise PolicyError("policy.recovery.auto must be true or false")
        return cls(auto)


@dataclass(frozen=True, slots=True)
class FallbackPolicy:
    """Another endpoint of the same application that takes over what this one cannot."""

    endpoint_id: str
    after_open_seconds: float | None = None
    """Also divert deliveries once this endpoint's circuit has been open this long."""

    def to_json(self) -> dict[str, Any]:
        return _drop_none(
            {"endpointId": self.endpoint_id, "afterOpenSeconds": self.after_open_seconds}
        )

    @classmethod
    def from_json(cls, value: Any) -> FallbackPolicy:
        data = _object(value, "policy.fallback")
        endpoint_id = data.get("endpointId")
        if not isinstance(endpoint_id, str) or not endpoint_id:
            raise PolicyError("policy.fallback.endpointId must name an endpoint")
        after = _optional_seconds(data, "afterOpenSeconds", "policy.fallback.afterOpenSeconds")
        return cls(endpoint_id, after)


@dataclass(frozen=True, slots=True)
class TraceContextPolicy:
    """Whether attempts to the endpoint carry a W3C ``traceparent`` (docs/observability.md,
    "Traces"). Opt-in per endpoint: a receiver that does not trace gains nothing from it, and
    the header tells a third party the producer's trace id."""

    forward: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"forward": self.forward}

    @classmethod
    def from_json(cls, value: Any) -> TraceContextPolicy:
        data = _object(value, "policy.traceContext")
        unknown = set(data) - {"forward"}
        if unknown:
            raise PolicyError(f"policy.traceContext has no field {sorted(unknown)[0]!r}")
        forward = data.get("forward", False)
        if not isinstance(forward, bool):
            raise PolicyError("policy.traceContext.forward must be true or false")
        return cls(forward)


@dataclass(frozen=True, slots=True)
class AnomalyPolicy:
    """Whether anomaly detection judges the endpoint (docs/observability.md, "Anomaly
    detection"). On by default; an operator mutes an endpoint whose traffic is erratic by
    nature rather than learn to ignore its anomalies."""

    detect: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"detect": self.detect}

    @classmethod
    def from_json(cls, value: Any) -> AnomalyPolicy:
        data = _object(value, "policy.anomalies")
        unknown = set(data) - {"detect"}
        if unknown:
            raise PolicyError(f"policy.anomalies has no field {sorted(unknown)[0]!r}")
        detect = data.get("detect", True)
        if not isinstance(detect, bool):
            raise PolicyError("policy.anomalies.detect must be true or false")
        return cls(detect)


@dataclass(frozen=True, slots=True)
class EndpointPolicy:
    """Every policy an endpoint may set; the default (all None) inherits everything."""

    retry: RetryPolicy | None = None
    breaker: BreakerPolicy | None = None
    ordering: OrderingPolicy | None = None
    fallback: FallbackPolicy | None = None
    recovery: RecoveryPolicy | None = None
    trace_context: TraceContextPolicy | None = None
    anomalies: AnomalyPolicy | None = None

    @property
    def forwards_trace_context(self) -> bool:
        return self.trace_context is not None and self.trace_context.forward

    @property
    def detects_anomalies(self) -> bool:
        return self.anomalies is None or self.anomalies.detect

    def to_json(self) -> dict[str, Any]:
        return {
            name: part.to_json()
            for name, part in (
                ("retry", self.retry),
                ("breaker", self.breaker),
                ("ordering", self.ordering),
                ("fallback", self.fallback),
                ("recovery", self.recovery),
                ("traceContext", self.trace_context),
                ("anomalies", self.anomalies),
            )
            if part is not None
        }

    @classmethod
    def from_json(cls, value: Any) -> EndpointPolicy:
        if value is None:
            return NO_ENDPOINT_POLICY
        data = _object(value, "policy")
        unknown = set(data) - {"retry", "breaker", "ordering", "fallback", "recovery"}
        unknown -= {"traceContext", "anomalies"}
        if unknown:
            raise PolicyError(f"policy has no field {sorted(unknown)[0]!r}")
        return cls(
            retry=None if data.get("retry") is None else RetryPolicy.from_json(data["retry"]),
            breaker=None
            if data.get("breaker") is None
            else BreakerPolicy.from_json(data["breaker"]),
            ordering=None
            if data.get("ordering") is None
            else OrderingPolicy.from_json(data["ordering"]),
            fallback=None
            if data.get("fallback") is None
            else FallbackPolicy.from_json(data["fallback"]),
            recovery=None
            if data.get("recovery") is None
            else RecoveryPolicy.from_json(data["recovery"]),
            trace_context=None
            if data.get("traceContext") is None
            else TraceContextPolicy.from_json(data["traceContext"]),
            anomalies=None
            if data.get("anomalies") is None
            else AnomalyPolicy.from_json(data["anomalies"]),
        )


@dataclass(frozen=True, slots=True)
class ApplicationPolicy:
    """What an application sets for all its endpoints; each endpoint may override it."""

    retry: RetryPolicy | None = None

    def to_json(self) -> dict[str, Any]:
        return {} if self.retry is None else {"retry": self.retry.to_json()}

    @classmethod
    def from_json(cls, value: Any) -> ApplicationPolicy:
        if value is None:
            return NO_APPLICATION_POLICY
        data = _object(value, "policy")
        unknown = set(data) - {"retry"}
        if unknown:
            raise PolicyError(f"policy has no field {sorted(unknown)[0]!r}")
        return cls(None if data.get("retry") is None else RetryPolicy.from_json(data["retry"]))


NO_ENDPOINT_POLICY = EndpointPolicy()
NO_APPLICATION_POLICY = ApplicationPolicy()
