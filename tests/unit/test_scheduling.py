"""deliverAt bounds, the effective retry policy (endpoint > application > server) and the
maximum age that ends retries (domain/scheduling.py, domain/outcome.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from hookline.domain.errors import InvalidRequest
from hookline.domain.models import Message
from hookline.domain.outcome import Verdict, decide
from hookline.domain.policy import ApplicationPolicy, EndpointPolicy, RetryPolicy
from hookline.domain.retry import RetrySchedule
from hookline.domain.scheduling import (
    DELIVER_AT_MAX_AHEAD,
    DELIVER_AT_PAST_TOLERANCE,
    EffectiveRetry,
    check_deliver_at,
    effective_retry,
)

NOW = datetime(2026, 1, 1, tzinfo=UTC)
SERVER = EffectiveRetry(RetrySchedule((5.0, 300.0), jitter=0.1), None)
RNG = random.Random(7)


def test_deliver_at_within_bounds_is_kept_in_utc() -> None:
    """A time ahead (up to 24 h) or slightly past is kept; one without a zone is UTC."""
    ahead = NOW + timedelta(seconds=2)
    assert check_deliver_at(ahead, NOW) == ahead
    assert check_deliver_at(NOW + DELIVER_AT_MAX_AHEAD, NOW) == NOW + DELIVER_AT_MAX_AHEAD
    assert check_deliver_at(NOW - DELIVER_AT_PAST_TOLERANCE, NOW) == NOW - DELIVER_AT_PAST_TOLERANCE
    naive = datetime(2026, 1, 1, 0, 0, 5)
    assert check_deliver_at(naive, NOW) == NOW + timedelta(seconds=5)
    assert check_deliver_at(None, NOW) is None


@pytest.mark.parametrize(
    "when",
    [
        NOW - DELIVER_AT_PAST_TOLERANCE - timedelta(seconds=1),
        NOW + DELIVER_AT_MAX_AHEAD + timedelta(seconds=1),
    ],
)
def test_deliver_at_out_of_bounds_is_a_422_naming_the_field(when: datetime) -> None:
    """Further in the past than the tolerance, or more than 24 h ahead, is refused."""
    with pytest.raises(InvalidRequest) as refused:
        check_deliver_at(when, NOW)
    assert refused.value.loc == ("body", "deliverAt")


def test_without_any_policy_the_server_rules_apply_as_they_are() -> None:
    """Nothing set on endpoint or application: the server's object itself, nothing built."""
    assert effective_retry(EndpointPolicy(), None, SERVER) is SERVER
    assert effective_retry(EndpointPolicy(), ApplicationPolicy(), SERVER) is SERVER


def test_the_endpoint_wins_over_the_application_field_by_field() -> None:
    """The endpoint's schedule wins; its unset max age comes from the application."""
    endpoint = EndpointPolicy(retry=RetryPolicy((0.2, 0.2)))
    app = ApplicationPolicy(RetryPolicy((1.0, 2.0, 3.0), 600.0))
    retry = effective_retry(endpoint, app, SERVER)
    assert retry.schedule == RetrySchedule((0.2, 0.2), jitter=SERVER.schedule.jitter)
    assert retry.max_age_seconds == 600.0


def test_the_application_wins_over_the_server() -> None:
    """An application's schedule applies to an endpoint that sets none; the server's max age
    stays when the application sets none."""
    server = EffectiveRetry(SERVER.schedule, 3600.0)
    retry = effective_retry(EndpointPolicy(), ApplicationPolicy(RetryPolicy((1.0,))), server)
    assert retry.schedule.delays == (1.0,) and retry.max_age_seconds == 3600.0


def test_an_empty_schedule_overrides_with_no_retries() -> None:
    """``[]`` is a schedule (one attempt), not "inherit"."""
    retry = effective_retry(EndpointPolicy(retry=RetryPolicy(())), None, SERVER)
    assert retry.schedule.max_attempts == 1


def test_the_deadline_counts_from_when_the_message_fell_due() -> None:
    """Max age counts from the message's creation, or from its deliverAt when later."""
    retry = EffectiveRetry(SERVER.schedule, 60.0)
    msg = Message("msg_1", "app_1", "a.b", None, b"{}", None, None, NOW)
    assert retry.deadline(msg.due_at) == NOW + timedelta(seconds=60)
    scheduled = Message(
        "msg_2", "app_1", "a.b", None, b"{}", None, None, NOW, None, NOW + timedelta(hours=1)
    )
    assert retry.deadline(scheduled.due_at) == NOW + timedelta(hours=1, seconds=60)
    assert SERVER.deadline(NOW) is None


def test_a_retry_that_would_start_after_the_deadline_exhausts_instead() -> None:
    """A failure whose next attempt would fall past the max age ends the delivery."""
    schedule = RetrySchedule((10.0,), jitter=0.0)
    early = decide(500, None, 1, schedule, NOW, RNG, deadline=NOW + timedelta(seconds=11))
    assert early.verdict is Verdict.RETRY and early.delay_seconds == 10.0
    late = decide(500, None, 1, schedule, NOW, RNG, deadline=NOW + timedelta(seconds=9))
    assert late.verdict is Verdict.EXHAUSTED


def test_a_retry_after_past_the_deadline_exhausts_too() -> None:
    """A receiver's Retry-After cannot carry a delivery past its max age."""
    schedule = RetrySchedule((1.0,), jitter=0.0)
    decision = decide(503, "120", 1, schedule, NOW, RNG, deadline=NOW + timedelta(seconds=60))
    assert decision.verdict is Verdict.EXHAUSTED


def test_the_deadline_never_changes_a_success_or_a_gone() -> None:
    """Past its max age, a 2xx still succeeds and a 410 still retires the endpoint."""
    schedule = RetrySchedule((1.0,), jitter=0.0)
    past = NOW - timedelta(seconds=1)
    assert decide(200, None, 1, schedule, NOW, RNG, deadline=past).verdict is Verdict.SUCCEEDED
    assert decide(410, None, 1, schedule, NOW, RNG, deadline=past).verdict is Verdict.ENDPOINT_GONE
