"""The pure rules of operational webhooks and auto-disable (``domain/operational.py``) and
the worker's in-memory failing tracker (``delivery/failing.py``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hookline.delivery.failing import REFRESH_SECONDS, FailingTracker
from hookline.domain.operational import (
    ATTEMPT_EXHAUSTED,
    ATTEMPT_FAILING,
    ATTEMPT_RECOVERED,
    FailureStep,
    attempt_event_type,
    due_step,
    is_attempt_failure,
    unknown_event_types,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
PERIOD = timedelta(days=5)


@pytest.mark.parametrize(
    ("number", "outcome", "manual", "expected"),
    [
        (1, "retry", False, None),
        (3, "retry", False, None),
        (4, "retry", False, ATTEMPT_FAILING),
        (5, "retry", False, None),
        (4, "fail", False, ATTEMPT_EXHAUSTED),
        (8, "fail", False, ATTEMPT_EXHAUSTED),
        (2, "gone", False, ATTEMPT_EXHAUSTED),
        (1, "success", False, None),
        (4, "success", False, None),
        (5, "success", False, ATTEMPT_RECOVERED),
        (4, "retry", True, None),
        (6, "success", True, None),
    ],
)
def test_which_attempt_ends_make_an_operational_event(
    number: int, outcome: str, manual: bool, expected: str | None
) -> None:
    """Failing on the fourth failed attempt only, exhausted on the last (or a 410), recovered
    on a success after the fourth; manual resends make none."""
    assert attempt_event_type(number, outcome, manual) == expected


@pytest.mark.parametrize(
    ("status", "failure"),
    [(0, True), (200, False), (204, False), (299, False), (301, True), (404, True), (500, True)],
)
def test_auto_disable_counts_every_answer_but_a_2xx_as_a_failure(
    status: int, failure: bool
) -> None:
    """No answer, a redirect or any 4xx/5xx is a failure; only a 2xx is a success."""
    assert is_attempt_failure(status) is failure


@pytest.mark.parametrize(
    ("elapsed", "done", "expected"),
    [
        (timedelta(days=2), FailureStep.NONE, None),
        (timedelta(days=2.5), FailureStep.NONE, FailureStep.WARNED_HALF),
        (timedelta(days=3), FailureStep.WARNED_HALF, None),
        (timedelta(days=4), FailureStep.WARNED_HALF, FailureStep.WARNED_LATE),
        (timedelta(days=4.5), FailureStep.WARNED_LATE, None),
        (timedelta(days=5), FailureStep.WARNED_LATE, FailureStep.DISABLED),
        (timedelta(days=4), FailureStep.NONE, FailureStep.WARNED_LATE),
        (timedelta(days=9), FailureStep.NONE, FailureStep.DISABLED),
        (timedelta(days=9), FailureStep.DISABLED, None),
    ],
)
def test_the_due_step_is_the_furthest_one_not_taken_yet(
    elapsed: timedelta, done: FailureStep, expected: FailureStep | None
) -> None:
    """Warnings at 50 % and 80 % of the period, the disable at 100 %; a late check takes only
    the furthest step due, and a step already taken is never due again."""
    assert due_step(T0, done, T0 + elapsed, PERIOD) == expected


def test_operational_endpoints_filter_only_on_types_hookline_sends() -> None:
    """Svix's types and hookline's endpoint.failing are known; a customer type is not."""
    names = ["endpoint.disabled", "endpoint.failing", "order.paid", "message.attempt.failing"]
    assert unknown_event_types(names) == ["order.paid"]


class Clock:
    def __init__(self) -> None:
        self.mono = 0.0

    def monotonic(self) -> float:
        return self.mono


def test_the_tracker_writes_only_when_what_it_knows_changes() -> None:
    """The first result for an endpoint is written; repeats are not; a change is; the same
    state is written again only after the refresh interval (for other workers' sake)."""
    clock = Clock()
    tracker = FailingTracker(lambda: T0, clock.monotonic)
    first = tracker.record("ep", "app_1", 500)
    assert first is not None and first.failing and first.at == T0
    assert tracker.record("ep", "app_1", 0) is None
    assert tracker.record("ep", "app_1", 503) is None
    healed = tracker.record("ep", "app_1", 200)
    assert healed is not None and not healed.failing
    assert tracker.record("ep", "app_1", 204) is None
    assert tracker.record("other", "app_1", 204) is not None
    clock.mono += REFRESH_SECONDS
    again = tracker.record("ep", "app_1", 200)
    assert again is not None and not again.failing
