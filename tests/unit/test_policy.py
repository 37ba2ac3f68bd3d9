"""The delivery-policy value: what it accepts, what it refuses, and how it inherits."""

from __future__ import annotations

from typing import Any

import pytest

from hookline.domain.policy import (
    NO_ENDPOINT_POLICY,
    AnomalyPolicy,
    ApplicationPolicy,
    BreakerPolicy,
    EndpointPolicy,
    FallbackPolicy,
    OnExhausted,
    OrderingPolicy,
    PolicyError,
    RecoveryPolicy,
    RetryPolicy,
    TraceContextPolicy,
)

FULL = {
    "retry": {"schedule": [1, 2.5, 60], "maxAgeSeconds": 3600},
    "breaker": {
        "threshold": 3,
        "failureRatio": 0.5,
        "windowSeconds": 60,
        "minAttempts": 10,
        "cooldownSeconds": 5,
    },
    "ordering": {"onExhausted": "hold"},
    "fallback": {"endpointId": "ep_2", "afterOpenSeconds": 600},
    "recovery": {"auto": True},
    "traceContext": {"forward": True},
    "anomalies": {"detect": False},
}


def test_a_full_endpoint_policy_round_trips_through_its_json_shape() -> None:
    """Every field survives to_json/from_json, so what the API shows is what was stored."""
    policy = EndpointPolicy.from_json(FULL)
    assert policy == EndpointPolicy(
        retry=RetryPolicy((1.0, 2.5, 60.0), 3600.0),
        breaker=BreakerPolicy(3, 0.5, 60.0, 10, 5.0),
        ordering=OrderingPolicy(OnExhausted.HOLD),
        fallback=FallbackPolicy("ep_2", 600.0),
        recovery=RecoveryPolicy(auto=True),
        trace_context=TraceContextPolicy(forward=True),
        anomalies=AnomalyPolicy(detect=False),
    )
    assert policy.forwards_trace_context and not NO_ENDPOINT_POLICY.forwards_trace_context
    assert not policy.detects_anomalies and NO_ENDPOINT_POLICY.detects_anomalies
    assert EndpointPolicy.from_json(policy.to_json()) == policy
    assert policy.to_json() == FULL


def test_an_absent_or_empty_policy_inherits_everything() -> None:
    """None and {} both mean the default policy, whose JSON is {} (stored as NULL)."""
    assert EndpointPolicy.from_json(None) is NO_ENDPOINT_POLICY
    assert EndpointPolicy.from_json({}) == NO_ENDPOINT_POLICY
    assert NO_ENDPOINT_POLICY.to_json() == {}
    assert ApplicationPolicy.from_json({}).to_json() == {}


def test_an_empty_retry_schedule_means_no_retries_not_inherit() -> None:
    """[] is a schedule of its own (one attempt), distinct from an unset one."""
    assert RetryPolicy.from_json({"schedule": []}).schedule == ()
    assert RetryPolicy.from_json({}).schedule is None


def test_an_endpoint_retry_policy_falls_back_field_by_field_to_its_application() -> None:
    """Unset fields come from the base; set ones win."""
    app = RetryPolicy((5.0, 300.0), 86400.0)
    assert RetryPolicy((1.0,)).over(app) == RetryPolicy((1.0,), 86400.0)
    assert RetryPolicy(None, 60.0).over(app) == RetryPolicy((5.0, 300.0), 60.0)
    assert RetryPolicy().over(None) == RetryPolicy()


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ([], "policy must be an object"),
        ({"nope": {}}, "'nope'"),
        ({"retry": {"schedule": "5,10"}}, "policy.retry.schedule"),
        ({"retry": {"schedule": [-1]}}, "policy.retry.schedule[]"),
        ({"retry": {"schedule": [True]}}, "policy.retry.schedule[]"),
        ({"retry": {"schedule": [1e309]}}, "policy.retry.schedule[]"),
        ({"retry": {"schedule": [1] * 21}}, "at most 20"),
        ({"retry": {"maxAgeSeconds": 0}}, "policy.retry.maxAgeSeconds"),
        ({"retry": {"maxAgeSeconds": 10**12}}, "7 days"),
        ({"breaker": {"failureRatio": 0}}, "policy.breaker.failureRatio"),
        ({"breaker": {"failureRatio": 1.5}}, "policy.breaker.failureRatio"),
        ({"breaker": {"threshold": 0}}, "policy.breaker.threshold"),
        ({"breaker": {"threshold": 2**63}}, "policy.breaker.threshold"),
        ({"breaker": {"minAttempts": 2.5}}, "policy.breaker.minAttempts"),
        ({"ordering": {"onExhausted": "drop"}}, "skip or hold"),
        ({"fallback": {}}, "policy.fallback.endpointId"),
        ({"fallback": {"endpointId": "ep", "afterOpenSeconds": -5}}, "afterOpenSeconds"),
        ({"recovery": {"auto": "yes"}}, "policy.recovery.auto must be true or false"),
        ({"recovery": {"lookback": 5}}, "policy.recovery has no field 'lookback'"),
        ({"traceContext": {"forward": "yes"}}, "policy.traceContext.forward"),
        ({"traceContext": {"sampled": True}}, "'sampled'"),
        ({"traceContext": True}, "policy.traceContext must be an object"),
        ({"anomalies": {"detect": 0}}, "policy.anomalies.detect must be true or false"),
        ({"anomalies": {"sensitivity": 3}}, "policy.anomalies has no field 'sensitivity'"),
    ],
)
def test_a_policy_hookline_cannot_use_is_refused_naming_the_field(value: Any, names: str) -> None:
    """Each bad value raises a PolicyError (a ValueError: the API's 422) naming what is wrong."""
    with pytest.raises(PolicyError, match=names.replace("[", r"\[").replace("]", r"\]")):
        EndpointPolicy.from_json(value)


def test_an_application_policy_has_only_a_retry_policy() -> None:
    """Ordering, breaker and fallback are per endpoint; an application refuses them."""
    with pytest.raises(PolicyError, match="'ordering'"):
        ApplicationPolicy.from_json({"ordering": {}})
    assert ApplicationPolicy.from_json({"retry": {"schedule": [1]}}).retry == RetryPolicy((1.0,))
